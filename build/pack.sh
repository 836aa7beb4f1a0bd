#!/usr/bin/env bash
# Packs OnnxBuildTools.<version>.nupkg (build files, task, worker, source generator) and the .NET tool
# onnx-build-tools.<version>.nupkg into artifacts/packages/, which the end-to-end tests and the sample
# use as a local package source.
# Usage: bash build/pack.sh [Configuration]   (default Release)
#
# Local packs get a unique prerelease version (0.1.0-dev.<UTC time>), so a consumer never restores an
# older pack of the same version from the global packages folder, and concurrent builds or test runs on
# one machine never delete each other's extracted package. OBT_VERSION_SUFFIX overrides the suffix; set it
# empty for a release pack (0.1.0).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
configuration=${1:-Release}
suffix=${OBT_VERSION_SUFFIX-dev.$(date -u +%Y%m%d%H%M%S)}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rm -f "$root"/artifacts/packages/OnnxBuildTools.*.nupkg "$root"/artifacts/packages/onnx-build-tools.*.nupkg
dotnet pack "$root/src/OnnxBuildTools.Tasks/OnnxBuildTools.Tasks.csproj" -c "$configuration" -nodeReuse:false -v:m \
  ${suffix:+-p:VersionSuffix="$suffix"}
# The tool packs what its publish folder holds: start from an empty one.
rm -rf "$root/src/OnnxBuildTools.Worker/bin/$configuration/net10.0/publish"
dotnet pack "$root/src/OnnxBuildTools.Worker/OnnxBuildTools.Worker.csproj" -c "$configuration" -nodeReuse:false -v:m \
  ${suffix:+-p:VersionSuffix="$suffix"}
# Extracted local packs older than a day are no longer used by anything.
packages_folder=${NUGET_PACKAGES:-$HOME/.nuget/packages}
find "$packages_folder/onnxbuildtools" -mindepth 1 -maxdepth 1 -name '*-dev.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
ls "$root"/artifacts/packages/OnnxBuildTools.*.nupkg "$root"/artifacts/packages/onnx-build-tools.*.nupkg
