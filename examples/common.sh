# examples/common.sh: option parsing shared by the example scripts (sourced, not run).
#   -m MODEL   target model (GGUF)                 -n N      max new tokens per turn (default 256)
#   -l N       only the first N items (default all) -o DIR   output folder (default out/<name>)
#   -- ARGS    extra hass-verify flags (e.g. -t 0.7 -s 1 --threads 2)
# HASS_DATA: the data folder (default ../shared/data); HASS_TOKENIZE_ARGS: extra hass-tokenize
# flags (e.g. "--template chatml" for a model without a chat template).
MODEL="" MAX_NEW=256 LIMIT=0 OUT="" VERIFY_ARGS=()
HASS_DATA=${HASS_DATA:-../shared/data}
read -r -a TOKENIZE_ARGS <<<"${HASS_TOKENIZE_ARGS:-}"
while [ $# -gt 0 ]; do
  case $1 in
    -m) MODEL=$2; shift 2 ;;
    -n) MAX_NEW=$2; shift 2 ;;
    -l) LIMIT=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    --) shift; VERIFY_ARGS=("$@"); break ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$MODEL" ] || { echo "$0: -m MODEL is required" >&2; exit 2; }
OUT=${OUT:-out/$(basename "$0" .sh)}
mkdir -p "$OUT" || exit 1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
set -o pipefail

# The first LIMIT lines of stdin (all when LIMIT is 0); reads to the end, so the writer
# before it never gets SIGPIPE (which pipefail would report).
take() { awk -v n="$LIMIT" 'n == 0 || NR <= n'; }

# Tokenize, decode and detokenize records from stdin to stdout.
decode() {
  hass-tokenize -m "$MODEL" "${TOKENIZE_ARGS[@]}" |
    hass-verify -m "$MODEL" -n "$MAX_NEW" "${VERIFY_ARGS[@]}" |
    hass-detok -m "$MODEL"
}
