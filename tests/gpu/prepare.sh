#!/usr/bin/env bash
# tests/gpu/prepare.sh: run on the development machine before a device run. Fills .dev/
# (git-ignored; the device tool carries it with carry [".dev"], 64 MiB at most) with what the
# lent machine lacks: static jansson and zlib (Debian's libjansson-dev and zlib1g-dev unpacked,
# shared libraries removed so the link is static) and the shared test data (~34 MB), so that
# tests/gpu/run.sh can build, run the whole suite and check real models there.
# SmolLM2 (98 MB) does not fit under the carry limit and is not copied.
set -eu
cd "$(dirname "$0")/../.."
LIB=.dev/sysroot/usr/lib/x86_64-linux-gnu
if [ ! -e "$LIB/libjansson.a" ] || [ ! -e "$LIB/libz.a" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download libjansson-dev zlib1g-dev)
  mkdir -p .dev/sysroot
  for f in "$tmp"/*.deb; do dpkg -x "$f" .dev/sysroot; done
  rm -rf "$tmp"
  rm -f "$LIB"/*.so*
fi
DATA=${HASS_DATA:-../shared/data}
if [ -d "$DATA" ]; then
  rm -rf .dev/data
  cp -r "$DATA" .dev/data
else
  echo "prepare: no test data at $DATA (set HASS_DATA)" >&2
fi
du -sh .dev
