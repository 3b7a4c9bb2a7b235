#!/usr/bin/env bash
# readme.sh: the README's command blocks, byte for byte as README.md has them (scripts/
# readme-blocks.sh), run in a fresh git clone of this working tree, in the README's order: the
# set-up line (make deps models all && ... a chat answer), the two-process line in the same shell,
# then `make test`. Only the model file is linked in to save the download (the fetch still checks
# its sha256). Also: the set-up line's speculative text equals plain decoding's.
# The inner `make test` runs with T=basics (a few CLI cases, enough to show the suite builds and
# runs in the clone) and HASS_README_INNER=1, which makes this test skip itself there.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
[ -z "${HASS_README_INNER:-}" ] || { echo "inside the README's own make test"; exit 77; }
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$MODEL" ] || { echo "needs $MODEL (make models)"; exit 77; }
command -v git >/dev/null || { echo "needs git"; exit 77; }
fail() { echo "$*"; exit 1; }
[ "$(bash scripts/readme-blocks.sh)" = 3 ] || fail "README.md should have 3 sh blocks (set-up, two-process, test)"
b1=$(bash scripts/readme-blocks.sh 1)
b2=$(bash scripts/readme-blocks.sh 2)
b3=$(bash scripts/readme-blocks.sh 3)
[[ "$b1" == "make "*"&& "* ]] || fail "the first README block is not the set-up line: $b1"
[ "$b3" = "make test" ] || fail "the third README block is not 'make test': $b3"

tmp=$(mktemp -d "${TMP:-/tmp}/readme.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
c=$tmp/hass
git clone -q "$ROOT" "$c" || fail "git clone failed"
# the working tree as it is: tracked and untracked-not-ignored files, and files deleted here
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    mkdir -p "$c/$(dirname "$f")" && cp -P --preserve=mode "$f" "$c/$f"
  else
    rm -f "$c/$f"
  fi
done
mkdir -p "$c/models"
ln "$ROOT/$MODEL" "$c/$MODEL" 2>/dev/null || cp "$ROOT/$MODEL" "$c/$MODEL"

# the clone sits beside shared/data as this checkout does (the suite's default HASS_DATA)
data=$(cd "${HASS_DATA:-../shared/data}" 2>/dev/null && pwd) && mkdir -p "$tmp/shared" &&
  ln -s "$data" "$tmp/shared/data"
# a user's shell: none of this suite's build settings leak in (CI's WERROR does)
clean=(env -u BUILD -u SANITIZE -u T -u TESTS -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u HASS_MODELS
       -u HASS_DATA)
printf '%s\necho "@@ block 2"\n%s\n' "$b1" "$b2" >"$tmp/blocks12.sh"
out=$(cd "$c" && "${clean[@]}" bash "$tmp/blocks12.sh" 2>"$tmp/err") ||
  { tail -20 "$tmp/err"; fail "the README's first two blocks failed"; }
one=$(echo "${out%%@@ block 2*}" | grep '^{') # make's lines come first on stdout
two=$(echo "${out#*@@ block 2}" | grep '^{')
echo "$one"
echo "$two"
echo "$one" | grep -q '"finish":"\(eos\|length\|stop\)"' || { tail -20 "$tmp/err"; fail "set-up line: no finished record"; }
echo "$one" | jq -e '.text | length > 0' >/dev/null || fail "set-up line: no text"
echo "$two" | jq -e '.text | length > 0' >/dev/null || { tail -20 "$tmp/err"; fail "two-process line: no text"; }
[ -x "$c/build/bin/hass-verify" ] || fail "the set-up line did not build build/bin/hass-verify"

# the same line without the drafter prints the same text (lossless)
plain=${b1#*&& }
plain=${plain/--draft heads\/smollm2-135m-instruct --tree auto /}
[ "$plain" != "${b1#*&& }" ] || fail "cannot find --draft ... --tree auto in the set-up line"
ptxt=$(cd "$c" && "${clean[@]}" bash -c "$plain" 2>>"$tmp/err" | jq -r .text)
[ "$(echo "$one" | jq -r .text)" = "$ptxt" ] || fail "speculative text differs from plain decoding"

# the README's second command
res=$(cd "$c" && "${clean[@]}" HASS_README_INNER=1 T=basics bash -c "$b3" 2>&1)
last=$(echo "$res" | tail -n1)
echo "make test in the clone: $last"
[[ "$last" =~ ^([0-9]+)\ passed,\ 0\ failed ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] ||
  { echo "$res" | tail -20; fail "make test in the fresh clone did not pass"; }
