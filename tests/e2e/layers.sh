#!/usr/bin/env bash
# layers.sh: libcore's folders include only their own and lower folders' headers (the order is the
# Makefile's LAYERS) and a header name is unique across folders; the binaries in cmd/ reach CUDA
# only through libcore (no gpu.h, no CUDA header, no HASS_WITH_CUDA).
set -u
cd "$(dirname "$0")/../.."
layers=$(sed -n 's/^LAYERS *:= *//p' Makefile)
[ -n "$layers" ] || { echo "no LAYERS in the Makefile"; exit 1; }
declare -A rank home
i=0
for l in $layers; do rank[$l]=$i; i=$((i + 1)); done
for d in libcore/*/; do
  d=${d%/}; l=${d#libcore/}
  [ -n "${rank[$l]+x}" ] || { echo "libcore/$l is not in the Makefile's LAYERS"; exit 1; }
  [ -f "$d/README.md" ] || { echo "libcore/$l has no README.md"; exit 1; }
done
bad=0
for h in libcore/*/*.h; do
  b=$(basename "$h")
  if [ -n "${home[$b]+x}" ]; then echo "$b is in libcore/${home[$b]} and $h"; bad=1; fi
  l=${h#libcore/}; home[$b]=${l%%/*}
done
for f in libcore/*/*.[ch]; do
  l=${f#libcore/}; l=${l%%/*}
  while read -r inc; do
    [ -n "${home[$inc]+x}" ] || { echo "$f includes \"$inc\", which no libcore folder has"; bad=1; continue; }
    t=${home[$inc]}
    if [ "${rank[$t]}" -gt "${rank[$l]}" ]; then
      echo "$f ($l) includes $inc from a higher folder ($t)"; bad=1
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
cuda=$(grep -l -e '#include "gpu.h"' -e '<cuda' -e 'HASS_WITH_CUDA' cmd/*.c)
if [ -n "$cuda" ]; then
  echo "cmd/ reaches CUDA past libcore (gpu.h, <cuda...> or HASS_WITH_CUDA) in:" $cuda; bad=1
fi
[ $bad -eq 0 ] && echo "layers: $(ls libcore/*/*.[ch] | wc -l) files in $(echo $layers | wc -w) folders, no upward include"
exit $bad
