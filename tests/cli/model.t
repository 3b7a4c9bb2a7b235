# CLI cases of hass-bench (the engine's benchmark tool) on stories260K.

# name: bench help
$ hass-bench --help
~ ^usage: hass-bench -m MODEL
= 0

# name: bench version
$ hass-bench --version
~ ^hass-bench 0\.1\.0
= 0

# name: bench needs a model
$ hass-bench
! -m MODEL is required
= 2

# name: bench bad number
$ hass-bench -m x --reps 0
! reps
= 2

# name: bench bad curve
$ hass-bench -m x --curve 1,zero
! curve
= 2

# name: bench missing model file
$ hass-bench -m /nonexistent.gguf
! /nonexistent.gguf
= 1

# name: bench malformed model file
$ printf 'GGUX0000' > $TMP/bad.gguf && hass-bench -m $TMP/bad.gguf
! bad magic
= 3

# name: bench runs stories260K (man page example)
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ hass-bench -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -p 16 -g 8 --curve 1,4 -r 1
~ ^\{"bench":"config","model":"stories260K-v3-f32.gguf"
~ ^\{"bench":"prefill","n":16,
~ ^\{"bench":"decode","n":8,
~ ^\{"bench":"forward","n":4,"context":128,
= 0
