#!/usr/bin/env bash
# README's first command: packs OnnxBuildTools, builds samples/TextClassifier against the fresh package
# (its text_encoder model is compressed to int8 during `dotnet build`), and runs it.
#
# The model is not in the repository (corpus data is never committed). Documented step: it is copied
# from ../shared/corpus/models/text_encoder/, else from the fetched corpus ($ONNX_CORPUS_DIR, fetched
# with ../shared/corpus/fetch.sh when missing), into samples/TextClassifier/models/ (gitignored).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sample="$root/samples/TextClassifier"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export ONNX_CORPUS_DIR=${ONNX_CORPUS_DIR:-$HOME/.cache/onnx-corpus}

# 1. The model and its data.
source_dir="$root/../shared/corpus/models/text_encoder"
if [ ! -f "$source_dir/model.onnx" ]; then
  source_dir="$ONNX_CORPUS_DIR/models/text_encoder"
  if [ ! -f "$source_dir/model.onnx" ]; then
    echo "Fetching the model corpus into $ONNX_CORPUS_DIR ..."
    bash "$root/../shared/corpus/fetch.sh" "$ONNX_CORPUS_DIR"
  fi
fi
mkdir -p "$sample/models"
cp "$source_dir/model.onnx" "$sample/models/text_encoder.onnx"
cp "$source_dir/vocab.json" "$source_dir/eval_input_ids.npy" "$source_dir/eval_labels.npy" "$sample/models/"
chmod u+w "$sample"/models/*

# 2. The package, fresh. Its version is reused across packs, so drop any older copy of that version
#    from the global packages folder (ONNX Runtime and everything else stay cached).
bash "$root/build/pack.sh" Release >/dev/null
package=$(ls "$root"/artifacts/packages/OnnxBuildTools.*.nupkg)
version=$(basename "$package" .nupkg); version=${version#OnnxBuildTools.}
packages_folder=${NUGET_PACKAGES:-$HOME/.nuget/packages}
rm -rf "$packages_folder/onnxbuildtools/$version"

# 3. Build (compresses the model) and run.
dotnet build "$sample/TextClassifier.csproj" -c Release -nodeReuse:false -p:OnnxBuildToolsVersion="$version" -v:m -clp:NoSummary
dotnet "$sample/bin/Release/net10.0/TextClassifier.dll" "$@"
