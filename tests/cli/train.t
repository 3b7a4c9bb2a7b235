# name: hass-train --help on stdout, exit 0
$ hass-train --help | head -2
> usage: hass-train -m MODEL -o DIR [OPTIONS] SHARD...
>        hass-train -m MODEL --features SHARD [--template NAME] [--dtype f16|bf16] FILE...

# name: hass-train --version names the build
$ hass-train --version
~ ^hass-train 0\.1\.0 \((cpu-only|cuda [0-9.]+ sm_[0-9]+)\)$

# name: hass-train without a model is a usage error
$ hass-train -o /tmp/x a.shard
= 2
! -m MODEL is required
! try 'hass-train --help'

# name: hass-train without shards is a usage error
$ hass-train -m m.gguf -o $TMP/x
= 2
! no feature shards given

# name: hass-train checks numbers
$ hass-train -m m.gguf -o $TMP/x --batch 0 a.shard
= 2
! --batch

# name: hass-train --resume and --init exclude each other
$ hass-train -m m.gguf -o $TMP/x --resume --init h a.shard
= 2
! exclude each other

# name: hass-train --dtype takes f16 or bf16
$ hass-train -m m.gguf --features $TMP/f.shard --dtype f32 conv.json
= 2
! --dtype: f16 or bf16

# name: hass-train refuses a missing model (runtime error, exit 1)
$ hass-train -m $TMP/none.gguf -o $TMP/x a.shard
= 1
! none.gguf

# name: hass-train refuses a shard that is not one (exit 3)
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ echo '{"x":1}' > $TMP/bad.shard && hass-train -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -o $TMP/x $TMP/bad.shard
= 3
! too short for a feature shard header

# name: hass-train refuses a file with another magic (exit 3)
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ head -c 200 $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf > $TMP/g.shard && hass-train -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -o $TMP/x $TMP/g.shard
= 3
! magic is not HASSFEAT
