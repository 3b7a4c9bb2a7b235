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

# name: bench roofline (read bandwidth 1 and 2 threads, vpdpbusd or why not)
$ hass-bench --roofline -t 1
~ ^\{"bench":"roofline_read","threads":1,"mib":[0-9]+,"gb_s":[0-9]+\.[0-9]+\}$
~ ^\{"bench":"roofline_read","threads":2,"mib":[0-9]+,"gb_s":[0-9]+\.[0-9]+\}$
~ ^\{"bench":"roofline_vpdpbusd",("threads":1,"gmac_s":[0-9]+\.[0-9]+|"skipped":"no AVX-512 VNNI on this CPU")\}$
= 0

# name: bench roofline takes no model
$ hass-bench --roofline -m x
! --roofline takes no model
= 2

# name: bench runs stories260K (man page example)
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ hass-bench -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -p 16 -g 8 --curve 1,4 -r 1
~ ^\{"bench":"config","model":"stories260K-v3-f32.gguf"
~ ^\{"bench":"prefill","n":16,
~ ^\{"bench":"decode","n":8,
~ ^\{"bench":"forward","n":4,"context":128,
= 0
