#!/usr/bin/env bash
# Packs OnnxBuildTools.<version>.nupkg (build files, task, worker, source generator) into
# artifacts/packages/, which the end-to-end tests and the sample use as a local package source.
# Usage: bash build/pack.sh [Configuration]   (default Release)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
configuration=${1:-Release}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rm -f "$root"/artifacts/packages/OnnxBuildTools.*.nupkg
dotnet pack "$root/src/OnnxBuildTools.Tasks/OnnxBuildTools.Tasks.csproj" -c "$configuration" -nodeReuse:false -v:m
ls "$root"/artifacts/packages/OnnxBuildTools.*.nupkg
