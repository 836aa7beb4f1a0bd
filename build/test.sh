#!/usr/bin/env bash
# Runs every test suite: fetches the model corpus, builds, packs the NuGet package the end-to-end
# tests consume, runs MSTest, and closes with one line "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ONNX_CORPUS_DIR=${ONNX_CORPUS_DIR:-$HOME/.cache/onnx-corpus}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
configuration=${CONFIGURATION:-Release}

if ! bash "$root/build/fetch-corpus.sh" "$ONNX_CORPUS_DIR"; then
  echo "could not fetch the model corpus into $ONNX_CORPUS_DIR"
  echo "0 passed, 1 failed"
  exit 1
fi

log=$(mktemp)
status=0
dotnet build OnnxBuildTools.sln -c "$configuration" -nodeReuse:false 2>&1 | tee "$log" | grep -E "error|Warn|Elapsed" || true
if [ "${PIPESTATUS[0]}" != 0 ] || grep -qE "Build FAILED|: error " "$log"; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ -f build/pack.sh ]; then
  bash build/pack.sh "$configuration" >>"$log" 2>&1 || { echo "pack failed"; tail -40 "$log"; echo "0 passed, 1 failed"; exit 1; }
fi

dotnet test OnnxBuildTools.sln -c "$configuration" --no-build -nodeReuse:false "$@" 2>&1 | tee "$log" || status=1

# VSTest prints one summary line per test assembly, e.g. "Passed!  - Failed: 0, Passed: 12, Skipped: 0, ...".
passed=$(grep -oE "Passed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE "Failed: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -oE "Skipped: +[0-9]+" "$log" | awk '{s+=$2} END {print s+0}')
assemblies=$(grep -cE "^(Passed|Failed)! " "$log" || true)
rm -f "$log"
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
if [ "$assemblies" = 0 ]; then failed=$((failed + 1)); fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
