# hass-detok: tokens -> text, generated field, specials, incremental deltas, bad input.

# name: round trip through hass-tokenize (SPM leading space removed once; ids as llama.cpp)
$ hass-tokenize -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf | hass-detok -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf --text-key back
< {"text":"  Füße 🦙\n\tok"}
> {"text":"  Füße 🦙\n\tok","tokens":[1,259,383,29993,5831,29871,243,162,169,156,13,12,554],"back":"  Füße 🦙\n\tok"}

# name: "generated" wins over "tokens" and keeps its leading space (a continuation); specials dropped unless --keep-special
$ for k in "" --keep-special; do echo '{"id":7,"tokens":[1],"generated":[403,407,2]}' | hass-detok -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf $k; done
> {"id":7,"tokens":[1],"generated":[403,407,2],"text":" Once upon"}
> {"id":7,"tokens":[1],"generated":[403,407,2],"text":" Once upon</s>"}

# name: deltas split inside a UTF-8 character give text only once it is complete
$ hass-detok -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf
< {"id":"s","type":"delta","tokens":[15043,29871,243]}
< {"id":"s","type":"delta","tokens":[162,169]}
< {"id":"s","type":"delta","tokens":[156]}
< {"id":"s","generated":[15043,29871,243,162,169,156]}
> {"id":"s","type":"delta","tokens":[15043,29871,243],"text":" Hello "}
> {"id":"s","type":"delta","tokens":[162,169],"text":""}
> {"id":"s","type":"delta","tokens":[156],"text":"🦙"}
> {"id":"s","generated":[15043,29871,243,162,169,156],"text":" Hello 🦙"}

# name: --stream prints text live, a newline per finished record
$ hass-detok -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf --stream
< {"id":"s","type":"delta","tokens":[15043,29871,243]}
< {"id":"s","type":"delta","tokens":[162,169,156]}
< {"id":"s","generated":[15043,29871,243,162,169,156]}
< {"id":"t","generated":[3186]}
>  Hello 🦙
>  world

# name: a broken byte sequence becomes U+FFFD
$ hass-detok -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf
< {"tokens":[243,15043]}
> {"tokens":[243,15043],"text":"� Hello"}

# name: bad records: id out of range, no tokens, not JSON; the rest is processed, exit 3
$ hass-detok -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
< {"id":1,"tokens":[403]}
< {"id":2,"tokens":[512]}
< {"id":3}
< {"id":4,"tokens":"x"}
< [1,2
< {"id":5,"tokens":[407]}
> {"id":1,"tokens":[403],"text":"Once"}
> {"id":2,"tokens":[512],"error":"<stdin>:2: \"tokens\"[0] = 512 is outside [0, 512)"}
> {"id":3,"error":"<stdin>:3: \"tokens\" missing"}
> {"id":4,"tokens":"x","error":"<stdin>:4: \"tokens\" is not an array"}
> {"line":5,"error":"<stdin>:5: not JSON: ']' expected near end of file (column 4)"}
> {"id":5,"tokens":[407],"text":"upon"}
= 3

# name: missing -m is a usage error
$ hass-detok
= 2
! -m MODEL is required

# name: binary frames from hass-tokenize --bin decode the same; the vocabulary fingerprint travels
$ echo '{"id":"a","text":"Once upon a time"}' | hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --bin | hass-detok -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --text-key back
> {"id":"a","text":"Once upon a time","tokens":[1,403,407,261,378],"back":"Once upon a time"}

# name: ids from another vocabulary are refused by fingerprint, exit 3
$ echo '{"text":"Once"}' | hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --bin | hass-detok -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-gpt-2.gguf
= 3
! fingerprint 457d0f7d differs from the model's 0c657cbe
