# f32.t: the shared --f32 flag (f32 activations, f32 KV cache; hass(7) SHARED FLAGS) in every tool
# that loads a target: documented in --help, accepted, and reported by hass-bench. The numerics
# are tested against llama.cpp and numpy in test_forward_ref and tests/e2e/gen_ref_smollm2.sh.

# name: --f32 is in the help of every tool that loads a target
$ for t in hass-verify hass-draft hass-train hass-bench; do $t --help | grep -c -- '--f32 .*f32 activations'; done
> 1
> 1
> 1
> 1

# name: hass-verify --f32 keeps stories260K's greedy ids (F32 weights: only the KV cache changes)
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify --f32 -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 8 | jq -c '[.generated, .finish]'
> [[432,383,286,261,376,298,315,421],"length"]

# name: hass-bench --f32 says so in its config record
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ hass-bench --f32 -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -p 8 -g 4 --curve none -r 1 | head -1 | jq -r .precision
> f32

# name: hass-bench reports the default precision as q8
@needs $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
$ hass-bench -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -p 8 -g 4 --curve none -r 1 | head -1 | jq -r .precision
> q8

# name: --f32 takes no value
$ hass-verify --f32=1 -m x.gguf
! doesn't allow an argument
= 2

# name: speculative decoding in f32 mode gives plain f32 decoding's tokens (SmolLM2, random head)
@needs $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
$ M=$HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf; hass-draft -m $M --init-random $TMP/h -s 3 && printf '{"id":1,"tokens":[504,3575,282,4649,314]}\n{"id":2,"tokens":[1,9690,198]}\n' > $TMP/p.jsonl && hass-verify --f32 -m $M -n 20 --threads 1 $TMP/p.jsonl | jq -c '[.id,.generated]' > $TMP/ar && hass-verify --f32 -m $M -n 20 --threads 1 --draft $TMP/h --tree-total 12 --tree-depth 3 --tree-topk 3 $TMP/p.jsonl | jq -c '[.id,.generated]' | cmp - $TMP/ar && hass-draft --f32 -m $M -d $TMP/h --threads 1 $TMP/p.jsonl | hass-verify --f32 -m $M -n 20 --threads 1 --tree-total 12 --tree-depth 3 --tree-topk 3 | jq -c '[.id,.generated]' | cmp - $TMP/ar && head -1 $TMP/ar | cut -c 1-39
> [1,[7042,30,198,198,504,2988,314,42,216
