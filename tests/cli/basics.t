# name: every binary has --help on stdout, exit 0
$ for b in hass-tokenize hass-detok hass-draft hass-verify; do $b --help | head -1; done
> usage: hass-tokenize -m MODEL [OPTIONS] [FILE...]
> usage: hass-detok -m MODEL [OPTIONS] [FILE...]
> usage: hass-draft -m MODEL -d HEAD [OPTIONS] [FILE...]
> usage: hass-verify -m MODEL [OPTIONS] [FILE...]

# name: --version names the build
$ for b in hass-tokenize hass-detok hass-draft hass-verify; do $b --version; done
~ ^hass-tokenize 0\.1\.0 \((cpu-only|cuda [0-9.]+ sm_[0-9]+)\)$
~ ^hass-verify 0\.1\.0 \((cpu-only|cuda [0-9.]+ sm_[0-9]+)\)$

# name: CUDA=0 builds say cpu-only
$ make -s CUDA=0 BUILD=$TMP/cpu $TMP/cpu/bin/hass-verify >/dev/null 2>&1 && $TMP/cpu/bin/hass-verify -V
> hass-verify 0.1.0 (cpu-only)

# name: unknown flag is a usage error (exit 2) with a help hint
$ hass-verify --bogus
= 2
! unrecognized option|unknown option
! try 'hass-verify --help'

# name: missing model is a usage error
$ hass-draft -d x
= 2
! -m MODEL is required

# name: inspect a GGUF v1 model
$ hass-verify --inspect $HASS_DATA/models/stories260K/tinyllamas-stories-260k-f32.gguf | head -7
> file: ../shared/data/models/stories260K/tinyllamas-stories-260k-f32.gguf
> version: 1
> size: 1182656 bytes
> alignment: 32
> kv: 18
> tensors: 48
> general.architecture                     str  "llama"

# name: inspect as JSON lines is valid for jq-style tools
$ hass-verify --inspect $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --json | sed -n '1p;12p;20p'
> {"type":"gguf","file":"../shared/data/models/stories260K/stories260K-v3-f32.gguf","version":3,"size":1185344,"alignment":32,"n_kv":18,"n_tensors":48}
> {"type":"kv","key":"llama.attention.layer_norm_rms_epsilon","value":9.99999975e-6,"vtype":"f32"}
> {"type":"tensor","name":"token_embd.weight","dtype":"F32","ne":[64,512],"offset":0,"bytes":131072}

# name: inspect a missing file: runtime error naming it
$ hass-verify --inspect /nonexistent.gguf
= 1
! hass-verify: error: /nonexistent.gguf: No such file or directory

# name: inspect a garbage file: malformed input, exit 3
$ head -c 1000 /dev/zero > $TMP/zero.gguf; hass-verify --inspect $TMP/zero.gguf
= 3
! not a GGUF file \(bad magic\)

# name: inspect a truncated file: exit 3 and says truncated
$ head -c 600000 $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf > $TMP/cut.gguf; hass-verify --inspect $TMP/cut.gguf
= 3
! truncated

# name: inspect SmolLM2 (when fetched)
@needs $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
$ hass-verify --inspect $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf | grep -E '^(llama.block_count|tensor token_embd)'
> llama.block_count                        u32  30
> tensor token_embd.weight                        Q8_0  [576, 49152] 30081024 bytes @ 0

# name: --help and --version to an unwritable stdout: exit 1 with a message, in every binary
@needs /dev/full
$ for b in hass-bench hass-cat hass-detok hass-draft hass-stats hass-tokenize hass-train hass-verify; do for f in --help --version; do m=$($b $f 2>&1 >/dev/full); echo "$b $f $? $m"; done; done
> hass-bench --help 1 hass-bench: error: <stdout>: write failed: No space left on device
> hass-bench --version 1 hass-bench: error: <stdout>: write failed: No space left on device
> hass-cat --help 1 hass-cat: error: <stdout>: write failed: No space left on device
> hass-cat --version 1 hass-cat: error: <stdout>: write failed: No space left on device
> hass-detok --help 1 hass-detok: error: <stdout>: write failed: No space left on device
> hass-detok --version 1 hass-detok: error: <stdout>: write failed: No space left on device
> hass-draft --help 1 hass-draft: error: <stdout>: write failed: No space left on device
> hass-draft --version 1 hass-draft: error: <stdout>: write failed: No space left on device
> hass-stats --help 1 hass-stats: error: <stdout>: write failed: No space left on device
> hass-stats --version 1 hass-stats: error: <stdout>: write failed: No space left on device
> hass-tokenize --help 1 hass-tokenize: error: <stdout>: write failed: No space left on device
> hass-tokenize --version 1 hass-tokenize: error: <stdout>: write failed: No space left on device
> hass-train --help 1 hass-train: error: <stdout>: write failed: No space left on device
> hass-train --version 1 hass-train: error: <stdout>: write failed: No space left on device
> hass-verify --help 1 hass-verify: error: <stdout>: write failed: No space left on device
> hass-verify --version 1 hass-verify: error: <stdout>: write failed: No space left on device

# name: --threads 0 is documented where it is accepted (help and man page)
$ for b in hass-bench hass-draft hass-verify; do $b --help | grep -c -- '--threads N .*(0 = all cores, default)'; grep -c '^\(CPU\|kernel\) threads (0 = all cores, the default)\.' man/$b.1; done | paste -sd ' '
> 1 1 1 1 1 1

# name: --threads 0 runs on all cores, as without the flag
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; for t in "" "--threads 0"; do echo '{"tokens":[1]}' | hass-verify -m $M -n 1 $t -v 2>&1 >/dev/null | grep -o '[0-9]* threads$'; done | uniq | wc -l
> 1
