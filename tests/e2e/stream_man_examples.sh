#!/usr/bin/env bash
# stream_man_examples.sh: every EXAMPLES block of the man pages runs and prints what the page
# says (tests/man-examples.sh; blocks needing a missing model or an unbuilt tool are skipped).
cd "$(dirname "$0")/../.."
command -v jq >/dev/null || { echo "jq not installed"; exit 77; }
bash tests/man-examples.sh
