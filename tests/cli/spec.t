# spec.t: speculative decoding from the command line: random heads, losslessness against plain
# decoding, seeds, metrics and hass-stats, and bad input (a head for another target, a head with
# wrong shapes, bad tree flags, bad metrics).

# name: greedy speculative output equals plain decoding (random head, several prompts)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 5 && printf '{"id":1,"tokens":[1,403,407]}\n{"id":2,"tokens":[1,300,301,302]}\n{"id":3,"tokens":[1]}\n' > $TMP/p.jsonl && hass-verify -m $M -n 40 --threads 1 $TMP/p.jsonl | jq -c '[.id,.generated]' > $TMP/ar && hass-verify -m $M -n 40 --threads 1 --draft $TMP/h --tree-total 12 --tree-depth 3 --tree-topk 3 $TMP/p.jsonl | jq -c '[.id,.generated]' | cmp - $TMP/ar && wc -l < $TMP/ar
> 3

# name: --tree auto is lossless too and writes metrics that hass-stats reads
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && hass-verify -m $M -n 30 --threads 1 $TMP/p.jsonl --metrics $TMP/ar.jsonl | jq -c .generated > $TMP/a && hass-verify -m $M -n 30 --threads 1 --draft $TMP/h --tree auto --tree-total 20 --metrics $TMP/m.jsonl $TMP/p.jsonl | jq -c .generated | cmp - $TMP/a && hass-stats --ar $TMP/ar.jsonl --json $TMP/m.jsonl | jq -c '[.requests, .generated, (.tau >= 1), (.speedup > 0)]'
> [1,30,true,true]

# name: two processes with --tree auto: lossless, and the summary counts records, not hass-draft's channel announcement
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && hass-verify -m $M -n 30 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/a && hass-draft -m $M -d $TMP/h $TMP/p.jsonl | hass-verify -m $M -n 30 --threads 1 --tree auto -v 2>$TMP/err | jq -c .generated | cmp - $TMP/a && grep -o 'verify: [0-9]* records' $TMP/err
> verify: 1 records

# name: the shipped head with its layer in Q8_0 (default) and exact gives plain decoding's text, in one process and in two
@needs $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
$ M=$HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf; echo '{"id":1,"messages":[{"role":"user","content":"Name three colours."}]}' | hass-tokenize -m $M > $TMP/p.jsonl && hass-verify -m $M -n 24 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/a && for x in "" --draft-exact; do hass-verify -m $M -n 24 --threads 1 --draft heads/smollm2-135m-instruct --tree-total 8 --tree-depth 3 --tree-topk 2 $x $TMP/p.jsonl | jq -c .generated | cmp - $TMP/a || echo differs $x; hass-draft -m $M -d heads/smollm2-135m-instruct --threads 1 $x $TMP/p.jsonl | hass-verify -m $M -n 24 --threads 1 --tree-total 8 --tree-depth 3 --tree-topk 2 | jq -c .generated | cmp - $TMP/a || echo differs two-process $x; done; wc -l < $TMP/a
> 1

# name: a head whose widths are not multiples of 32 keeps an exact drafter (said at -v)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403]}' | hass-verify -m $M -n 8 --threads 1 --draft $TMP/h --tree-total 4 --tree-depth 2 --tree-topk 2 -v 2>&1 >/dev/null | grep -o 'width 172 cannot be Q8_0.*'
> width 172 cannot be Q8_0 (32-value blocks); the drafter stays exact

# name: at T > 0 the same seed gives the same speculative output
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && for s in 4 4; do echo '{"id":1,"tokens":[1,403]}' | hass-verify -m $M -n 16 -t 1.2 --top-p 0.9 -s $s --threads 1 --draft $TMP/h --tree-total 8 --tree-depth 3 --tree-topk 2 | jq -c .generated; done | uniq | wc -l
> 1

# name: a head made for another target is refused (exit 3, names both)
$ hass-draft -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --init-random $TMP/h && echo '{"id":1,"tokens":[1]}' | hass-verify -m $HASS_DATA/models/llama-2-tiny-random/llama-2-tiny-random.gguf --draft $TMP/h
! head is for hidden size 64 and vocabulary 512, the target has 8 and 32000
= 3

# name: a head with wrong shapes is refused with the tensor's name (exit 3)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && sed -i 's/"intermediate_size": 172/"intermediate_size": 100/' $TMP/h/config.json && echo '{"id":1,"tokens":[1]}' | hass-verify -m $M --draft $TMP/h
! gate_proj.weight' has shape \[172, 64\], expected \[100, 64\]
= 3

# name: a missing head folder is a runtime error
$ echo '{"id":1,"tokens":[1]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --draft $TMP/nonexistent
! nonexistent
= 1

# name: bad tree flags are usage errors
$ hass-verify -m x --draft y --tree sometimes
! --tree: 'auto' or 'fixed'
= 2

# name: tree total out of range is a usage error
$ hass-verify -m x --draft y --tree-total 0
! --tree-total
= 2

# name: hass-draft needs something to do
$ hass-draft -m x
! nothing to do
= 2

# name: hass-stats reports a malformed record and a file without requests
$ printf '{"type":"cycle"}\n' | hass-stats
! "accepted"
= 3

# name: speculative decoding reports its timing like plain decoding, CPU time of the cycles included
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 2 && echo '{"id":"s","tokens":[1,403,407]}' | hass-verify -m $M -n 40 --threads 1 --draft $TMP/h --tree-total 4 --tree-depth 2 --tree-topk 2 | jq -c '.timing | [keys, (.prefill_ms > 0), (.decode_ms > 0), (.tok_s > 0), (.decode_cpu_ms > 0)]'
> [["decode_cpu_ms","decode_ms","prefill_ms","tok_s"],true,true,true,true]

# name: two processes (hass-draft | hass-verify, back channel) give the in-process output, T = 0
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 2 && printf '{"id":1,"tokens":[1,403,407]}\n{"id":2,"tokens":[1,300,301,302]}\n' > $TMP/p.jsonl && hass-verify -m $M -n 30 --threads 1 --draft $TMP/h --tree-total 12 --tree-depth 3 --tree-topk 3 $TMP/p.jsonl > $TMP/one && hass-draft -m $M -d $TMP/h --threads 1 $TMP/p.jsonl | hass-verify -m $M -n 30 --threads 1 --tree-total 12 --tree-depth 3 --tree-topk 3 | jq -c 'del(.timing)' > $TMP/two && jq -c 'del(.timing)' $TMP/one | cmp - $TMP/two && wc -l < $TMP/two
> 2

# name: two processes at T > 0 with the same seed give the in-process output
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 2 && printf '{"id":1,"tokens":[1,403]}\n{"id":2,"tokens":[1,300]}\n' > $TMP/p.jsonl && hass-verify -m $M -n 24 -t 1.1 --top-k 50 -s 9 --threads 1 --draft $TMP/h --tree-total 8 --tree-depth 2 --tree-topk 3 $TMP/p.jsonl | jq -c .generated > $TMP/one && hass-draft -m $M -d $TMP/h --threads 1 $TMP/p.jsonl | hass-verify -m $M -n 24 -t 1.1 --top-k 50 -s 9 --threads 1 --tree-total 8 --tree-depth 2 --tree-topk 3 | jq -c .generated | cmp - $TMP/one && echo same
> same

# name: a drafter for another target is refused in two-process mode (error record, exit 3)
$ set -o pipefail; hass-draft -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --init-random $TMP/h && echo '{"id":1,"tokens":[1]}' | hass-draft -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -d $TMP/h | hass-verify -m $HASS_DATA/models/llama-2-tiny-random/llama-2-tiny-random.gguf -n 2 | jq -c '[.type, .id, (.error != null)]'
> ["draft_channel",null,true]
> [null,1,false]
! draft channel: the drafter runs target
= 3

# name: a missing back channel is an error record; the records are still decoded plainly
$ set -o pipefail; printf '{"type":"draft_channel","proto":1,"socket":"/nonexistent/sock","target_fp":"67ad6f42","tokenizer_fp":"457d0f7d"}\n{"id":1,"tokens":[1,403,407,261,378]}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 4 | jq -c '[.id, .generated, (.error != null)]'
> [null,null,true]
> [1,[432,383,286,261],false]
! cannot connect to /nonexistent/sock
= 1

# name: a drafter killed mid-run: the records finish by plain decoding, same tokens, no hang
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && for i in 1 2 3 4 5 6; do echo "{\"id\":$i,\"tokens\":[1,403,407]}"; done > $TMP/p.jsonl && hass-verify -m $M -n 60 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/ar && (hass-draft -m $M -d $TMP/h --threads 1 $TMP/p.jsonl & echo $! > $TMP/pid; wait) | hass-verify -m $M -n 60 --threads 1 --tree-total 60 | (read -r first; kill -9 $(cat $TMP/pid); echo "$first"; cat) > $TMP/kout; jq -c .generated $TMP/kout | cmp - $TMP/ar; jq -r '.draft // "ok"' $TMP/kout | sort -u | tr '\n' ' '
~ ^(lost ok |ok )$

# name: --pack writes the head in BF16 with a draft vocabulary counted from a shard; speculative output with it equals plain decoding
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-train -m $M --features $TMP/c.shard --template chatml --limit 8 --max-len 96 $HASS_DATA/sharegpt/dummy_conversation.json 2>/dev/null && hass-draft -m $M --init-random $TMP/h -s 3 && hass-draft -v -m $M --check $TMP/h --pack $TMP/p --draft-vocab 64 $TMP/c.shard 2>&1 >/dev/null | grep -o 'draft vocabulary: 64 of 512 ids' && printf '{"id":1,"tokens":[1,403,407]}\n{"id":2,"tokens":[1,300,301,302]}\n' > $TMP/p.jsonl && hass-verify -m $M -n 40 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/ar && hass-verify -m $M -n 40 --threads 1 --draft $TMP/p --tree-total 12 --tree-depth 3 --tree-topk 3 $TMP/p.jsonl | jq -c .generated | cmp - $TMP/ar && jq -r .torch_dtype $TMP/p/config.json
> draft vocabulary: 64 of 512 ids
> bfloat16

# name: --draft-vocab needs --pack and shards
$ hass-draft -m x --check y --draft-vocab 64
! --draft-vocab N goes with --pack DIR and feature SHARDs
= 2

# name: --pack needs --check
$ hass-draft -m x --init-random y --pack z
! --pack goes with --check HEAD
= 2

# name: --tree auto keeps its start measurements in $HASS_CACHE_DIR and reads them on the next run, with the same output
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && export HASS_CACHE_DIR=$TMP/cc && hass-verify -m $M -n 30 --threads 1 --draft $TMP/h --tree auto -v $TMP/p.jsonl 2>$TMP/e1 | jq -c .generated > $TMP/a && hass-verify -m $M -n 30 --threads 1 --draft $TMP/h --tree auto -v $TMP/p.jsonl 2>$TMP/e2 | jq -c .generated | cmp - $TMP/a && grep -c "costs saved" $TMP/e1 && grep -c "costs from" $TMP/e2 && ls $TMP/cc | grep -c '^tree-auto-[0-9a-f]\{16\}\.json$'
> 1
> 1
> 1

# name: --tree auto measures over a corrupt cost cache file and rewrites it
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && export HASS_CACHE_DIR=$TMP/cb && hass-verify -m $M -n 5 --threads 1 --draft $TMP/h --tree auto $TMP/p.jsonl >/dev/null && f=$(ls $TMP/cb/tree-auto-*.json) && echo '{"version":1,"curve":[[1,' > $f && hass-verify -m $M -n 5 --threads 1 --draft $TMP/h --tree auto -v $TMP/p.jsonl 2>$TMP/e >/dev/null && grep -c "does not hold valid costs" $TMP/e && jq -c '[.version, (.curve | length > 0)]' $f
> 1
> [1,true]

# name: the cost cache goes to $XDG_CACHE_HOME/hass, else ~/.cache/hass; HASS_CACHE_DIR set empty keeps none
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && mkdir -p $TMP/h1 $TMP/h3 && r() { hass-verify -m $M -n 5 --threads 1 --draft $TMP/h --tree auto $TMP/p.jsonl >/dev/null; } && (unset HASS_CACHE_DIR; HOME=$TMP/h1 XDG_CACHE_HOME=$TMP/h2/x r) && (unset HASS_CACHE_DIR; HOME=$TMP/h3 XDG_CACHE_HOME= r) && (HASS_CACHE_DIR= HOME=$TMP/h1 XDG_CACHE_HOME= r) && ls $TMP/h2/x/hass $TMP/h3/.cache/hass | grep -c '^tree-auto-' && ls -A $TMP/h1 | wc -l
> 2
> 0
