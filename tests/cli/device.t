# device.t: --device on hass-verify and hass-draft: the CPU backend gives the engine's ids, a bad
# name is a usage error, and cuda without a device (hidden with CUDA_VISIBLE_DEVICES, so these
# cases hold on GPU machines too) or in a CPU-only build exits 4 with a message saying which.

# name: --device cpu decodes the same ids as the default on a machine without a GPU
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --device cpu -n 8 | jq -c .generated
> [432,383,286,261,376,298,315,421]

# name: -v says which device auto picked (cpu without a visible GPU)
$ echo '{"tokens":[1,403]}' | CUDA_VISIBLE_DEVICES= hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --device auto -v -n 2 | jq -c .generated
> [407,261]
! device: cpu \(auto\)

# name: --device with a bad name is a usage error
$ hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --device tpu </dev/null
= 2
! --device: device 'tpu': expected cuda, cpu or auto
! try 'hass-verify --help'

# name: --device cuda without a visible device exits 4 before reading input
$ CUDA_VISIBLE_DEVICES= hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --device cuda </dev/null
= 4
! hass-verify: error: --device cuda: (no CUDA device is present|this is a CPU-only build)

# name: --device cuda in a CPU-only build says so and exits 4
$ make -s CUDA=0 BUILD=$TMP/cpu $TMP/cpu/bin/hass-verify >/dev/null 2>&1 && $TMP/cpu/bin/hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --device cuda </dev/null
= 4
! --device cuda: this is a CPU-only build \(cpu-only\); use --device cpu or rebuild with nvcc

# name: speculative decoding with --device cpu keeps the greedy ids (random head: lossless at T=0)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 3 && echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $M --device cpu -d $TMP/h --tree-total 12 --tree-depth 3 --tree-topk 3 -n 8 | jq -c .generated
> [432,383,286,261,376,298,315,421]

# name: hass-draft --device cuda without a visible device exits 4 before serving
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/hd -s 3 && CUDA_VISIBLE_DEVICES= hass-draft -m $M -d $TMP/hd --device cuda </dev/null
= 4
! hass-draft: error: --device cuda: (no CUDA device is present|this is a CPU-only build)

# name: hass-draft --device with a bad name is a usage error
$ hass-draft -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -d x --device gpu </dev/null
= 2
! --device: device 'gpu': expected cuda, cpu or auto

# name: two processes with --device cpu on both give the in-process ids
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/hd2 -s 3 && echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-draft -m $M -d $TMP/hd2 --device cpu | hass-verify -m $M --device cpu --tree-total 12 --tree-depth 3 --tree-topk 3 -n 8 | jq -c .generated
> [432,383,286,261,376,298,315,421]

# name: hass-bench --device cpu names the device in its config record; cuda without one exits 4
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-bench -m $M -p 4 -g 2 --curve none -r 1 --device cpu | head -1 | jq -r .device; CUDA_VISIBLE_DEVICES= hass-bench -m $M --device cuda
> cpu
= 4
! hass-bench: error: --device cuda: (no CUDA device is present|this is a CPU-only build)
