# verify.t: hass-verify as the autoregressive baseline on stories260K: greedy ids, sampling
# seeds, stop conditions, streaming, binary I/O, and every kind of bad input (each bad record
# gets an error record, every good one its answer, and the exit code says something failed).
# "timing" varies from run to run, so the cases drop it with jq.

# name: greedy continuation (the first ids of llama.cpp's greedy story)
$ echo '{"id":"s","tokens":[1,403,407,261,378],"note":"kept"}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 8 | jq -c 'del(.timing)'
> {"id":"s","tokens":[1,403,407,261,378],"note":"kept","generated":[432,383,286,261,376,298,315,421],"finish":"length"}

# name: the output record carries timing: prefill_ms, decode_ms, tok_s, decode_cpu_ms
$ echo '{"id":"s","tokens":[1,403]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 4 | jq -c '.timing | [keys, (.prefill_ms > 0), (.decode_ms > 0), (.tok_s > 0), (.decode_cpu_ms > 0)]'
> [["decode_cpu_ms","decode_ms","prefill_ms","tok_s"],true,true,true,true]

# name: --stop ends at the token that completes the stop string
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 40 --stop Lily --stop zebra | jq -c 'del(.timing)'
> {"id":"s","tokens":[1,403,407,261,378],"generated":[432,383,286,261,376,298,315,421,395,317],"finish":"stop","stop":"Lily"}

# name: a full context ends the generation with finish "length"
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 100 --ctx 8 | jq -c 'del(.timing)'
> {"id":"s","tokens":[1,403,407,261,378],"generated":[432,383,286,261],"finish":"length"}

# name: per-record max_new overrides --max-new; --max-new 0 generates nothing
$ printf '{"id":1,"tokens":[1],"max_new":2}\n{"id":2,"tokens":[1]}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 0 | jq -c '[.id, .generated, .finish]'
> [1,[403,407],"length"]
> [2,[],"length"]

# name: same seed, same sample; another seed, another sample (temperature 1.5)
$ for s in 1 1 2; do echo '{"id":"s","tokens":[1,403]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -t 1.5 -s $s -n 12 | jq -c .generated; done
> [383,286,261,297,411,356,268,379,416,422,395,368]
> [383,286,261,297,411,356,268,379,416,422,395,368]
> [407,407,261,378,432,383,286,261,376,261,423,304]

# name: seeds follow the record id, so shards give the same output as one process
$ for i in 1 2 3 4; do echo "{\"id\":$i,\"tokens\":[1]}"; done > $TMP/ids.jsonl; M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-verify -m $M -t 1.5 -s 3 -n 10 $TMP/ids.jsonl | jq -c '[.id,.generated]' > $TMP/one; (sed -n 3,4p $TMP/ids.jsonl | hass-verify -m $M -t 1.5 -s 3 -n 10; sed -n 1,2p $TMP/ids.jsonl | hass-verify -m $M -t 1.5 -s 3 -n 10) | jq -c '[.id,.generated]' | sort > $TMP/two; sort $TMP/one | cmp - $TMP/two && sort -u -t, -k2 $TMP/one | wc -l
> 4

# name: top-k 1 at any temperature is greedy
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -t 1.5 --top-k 1 -s 9 -n 8 | jq -c .generated
> [432,383,286,261,376,298,315,421]

# name: --stream writes one delta per token, then the final record
$ echo '{"id":"s","tokens":[1,403,407]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 3 --stream | jq -c 'del(.timing)'
> {"id":"s","type":"delta","tokens":[261]}
> {"id":"s","type":"delta","tokens":[378]}
> {"id":"s","type":"delta","tokens":[432]}
> {"id":"s","tokens":[1,403,407],"generated":[261,378,432],"finish":"length"}

# name: binary in and out: same records as JSONL, with the model's vocab fingerprint
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; echo '{"id":"s","tokens":[1,403]}' | hass-cat --bin | hass-verify -m $M -n 3 --bin | hass-cat | jq -c 'del(.timing)'; echo '{"id":"s","tokens":[1,403]}' | hass-verify -m $M -n 1 --bin | hass-cat --list | head -1
> {"id":"s","tokens":[1,403],"generated":[407,261,378],"finish":"length"}
> <stdin>: stream 1: version 1, header 16 bytes, vocab_fp 457d0f7d, flags 0

# name: a binary stream of another vocabulary is refused, exit 3
$ echo '{"id":"s","tokens":[1,403]}' | hass-cat --bin --vocab-fp 00000001 | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1
= 3
! stream vocab fingerprint 00000001 differs from the model's

# name: bad records get error records, good ones their answer, exit 3
$ printf '{"id":1,"tokens":[1,403]}\nnot json\n{"id":3}\n{"id":4,"tokens":[1,99999]}\n{"id":5,"tokens":[]}\n{"id":6,"tokens":"abc"}\n{"id":7,"tokens":[1,403]}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 2 | jq -c 'del(.timing)'
> {"id":1,"tokens":[1,403],"generated":[407,261],"finish":"length"}
> {"line":2,"error":"<stdin>:2: not JSON: '[' or '{' expected near 'not' (column 3)"}
> {"id":3,"finish":"error","error":"<stdin>:3: \"tokens\" missing"}
> {"id":4,"tokens":[1,99999],"finish":"error","error":"<stdin>:4: \"tokens\"[1] = 99999 is outside [0, 512)"}
> {"id":5,"tokens":[],"finish":"error","error":"<stdin>:5: \"tokens\" is empty"}
> {"id":6,"tokens":"abc","finish":"error","error":"<stdin>:6: \"tokens\" is not an array"}
> {"id":7,"tokens":[1,403],"generated":[407,261],"finish":"length"}

# name: the exit code says a record failed (3) and stderr says which
$ printf '{"id":1,"tokens":[1]}\n{"id":2,"tokens":[1,99999]}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 > /dev/null
= 3
! hass-verify: error: <stdin>:2: "tokens"\[1\] = 99999 is outside \[0, 512\)

# name: prompt longer than the context: error record, exit 3
$ echo '{"id":1,"tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --ctx 4 | jq -c .
> {"id":1,"tokens":[1,403,407,261,378],"finish":"error","error":"<stdin>:1: prompt of 5 tokens is longer than the context (4)"}

# name: binary frame with a bad CRC: an error record for it, the next record still decoded, exit 3
$ printf '{"id":1,"tokens":[1,403]}\n{"id":2,"tokens":[1,403]}\n' | hass-cat --bin > $TMP/v.bin && printf 'X' | dd of=$TMP/v.bin bs=1 seek=32 conv=notrunc 2>/dev/null && hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 $TMP/v.bin | jq -c 'del(.timing)'
~ ^\{"frame":1,"error":".*v\.bin:frame 1: crc mismatch
~ ^\{"id":2,"tokens":\[1,403\],"generated":\[407\],"finish":"length"\}$
= 0

# name: truncated binary input (writer killed mid-frame): earlier records decoded, error, exit 3
$ printf '{"id":1,"tokens":[1,403]}\n{"id":2,"tokens":[1,403]}\n' | hass-cat --bin | head -c 90 | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 > $TMP/tr.out; echo "exit $?"; jq -c 'del(.timing)' $TMP/tr.out
> exit 3
> {"id":1,"tokens":[1,403],"generated":[407],"finish":"length"}
> {"frame":2,"error":"<stdin>:frame 2: truncated frame header (9 of 12 bytes)"}

# name: JSONL writer killed mid-line: earlier records decoded, the partial line an error, exit 3
$ printf '{"id":1,"tokens":[1,403]}\n{"id":2,"tok' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 > $TMP/kl.out; echo "exit $?"; jq -c 'del(.timing)' $TMP/kl.out
> exit 3
> {"id":1,"tokens":[1,403],"generated":[407],"finish":"length"}
> {"line":2,"error":"<stdin>:2: not JSON: premature end of input near '\"tok' (column 12)"}

# name: a reader that goes away (SIGPIPE) ends hass-verify quietly
$ for i in $(seq 200); do echo '{"tokens":[1,403]}'; done | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 4 2>$TMP/vp.err | head -1 | jq -c .generated; echo "status ${PIPESTATUS[1]} stderr $(wc -c < $TMP/vp.err)"
> [407,261,378,432]
> status 141 stderr 0

# name: unwritable output file: runtime error before the model loads, exit 1
$ echo '{"tokens":[1]}' | hass-verify -m /nonexistent.gguf -o /nonexistent/dir/out.jsonl
= 1
! hass-verify: error: /nonexistent/dir/out.jsonl: No such file or directory

# name: output device full: the write error is reported, exit 1
@needs /dev/full
$ echo '{"tokens":[1]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 -o /dev/full
= 1
! write failed: No space left on device

# name: records that failed upstream pass through unchanged; exit 1
$ printf '{"id":1,"error":"hass-tokenize: bad"}\n{"id":2,"tokens":[1]}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 | jq -c 'del(.timing)'
> {"id":1,"error":"hass-tokenize: bad"}
> {"id":2,"tokens":[1],"generated":[403],"finish":"length"}
= 0

# name: --margins adds the top1-top2 logit margin of every step
$ echo '{"id":"s","tokens":[1,403,407,261,378]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 3 --margins | jq -c '.margins | map(. * 100 | round)'
> [352,291,483]

# name: --margins with --draft is a usage error (a verify cycle keeps no per-step logits)
$ echo '{"id":"s","tokens":[1,403]}' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 3 --margins --draft x
= 2
! --margins: plain decoding only

# name: bad flag values are usage errors naming the flag
$ hass-verify -m x --temp -1
= 2
! --temp

# name: per-record max_new of a wrong type: an error record naming the key, the others decoded, exit 3
$ printf '{"id":1,"tokens":[1],"max_new":"7"}\n{"id":2,"tokens":[1],"max_new":1e10}\n{"id":3,"tokens":[1],"max_new":2.0}\n{"id":4,"tokens":[1],"max_new":null}\n{"id":5,"tokens":[1],"max_new":[3]}\n{"id":6,"tokens":[1],"max_new":1}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 2 | jq -c '[.id, .finish, (.error // .generated)]'; echo "exit ${PIPESTATUS[1]}"
> [1,"error","<stdin>:1: \"max_new\" is not an integer: \"7\""]
> [2,"error","<stdin>:2: \"max_new\" is not an integer: 10000000000.0"]
> [3,"error","<stdin>:3: \"max_new\" is not an integer: 2.0"]
> [4,"error","<stdin>:4: \"max_new\" is not an integer: null"]
> [5,"error","<stdin>:5: \"max_new\" is not an integer: [3]"]
> [6,"length",[403]]
> exit 3

# name: per-record max_new out of range (below 0, above 16777216): error records; the bounds decode
$ printf '{"id":1,"tokens":[1],"max_new":-5}\n{"id":2,"tokens":[1],"max_new":16777217}\n{"id":3,"tokens":[1],"max_new":0}\n{"id":4,"tokens":[1],"max_new":16777216}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 2 --ctx 6 | jq -c 'del(.timing)'; echo "exit ${PIPESTATUS[1]}"
> {"id":1,"tokens":[1],"max_new":-5,"finish":"error","error":"<stdin>:1: \"max_new\" = -5 is outside [0, 16777216]"}
> {"id":2,"tokens":[1],"max_new":16777217,"finish":"error","error":"<stdin>:2: \"max_new\" = 16777217 is outside [0, 16777216]"}
> {"id":3,"tokens":[1],"max_new":0,"generated":[],"finish":"length"}
> {"id":4,"tokens":[1],"max_new":16777216,"generated":[403,407,261,378,432,383],"finish":"length"}
> exit 3

# name: per-record seed of a wrong type: an error record naming the key, the others decoded, exit 3
$ printf '{"id":1,"tokens":[1],"seed":1.5}\n{"id":2,"tokens":[1],"seed":"3"}\n{"id":3,"tokens":[1],"seed":true}\n{"id":4,"tokens":[1],"seed":{}}\n{"id":5,"tokens":[1],"seed":3}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 2 | jq -c 'del(.timing)'; echo "exit ${PIPESTATUS[1]}"
> {"id":1,"tokens":[1],"seed":1.5,"finish":"error","error":"<stdin>:1: \"seed\" is not an integer: 1.5"}
> {"id":2,"tokens":[1],"seed":"3","finish":"error","error":"<stdin>:2: \"seed\" is not an integer: \"3\""}
> {"id":3,"tokens":[1],"seed":true,"finish":"error","error":"<stdin>:3: \"seed\" is not an integer: true"}
> {"id":4,"tokens":[1],"seed":{},"finish":"error","error":"<stdin>:4: \"seed\" is not an integer: {}"}
> {"id":5,"tokens":[1],"seed":3,"generated":[403,407],"finish":"length"}
> exit 3

# name: per-record seed out of range (below 0): an error record; 0 and 2^63-1 decode, and seed the sampler
$ printf '{"id":1,"tokens":[1],"seed":-1}\n{"id":2,"tokens":[1,403],"seed":0}\n{"id":3,"tokens":[1,403],"seed":9223372036854775807}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 6 -t 1.5 | jq -c 'del(.timing)' > $TMP/seed.out; echo "exit ${PIPESTATUS[1]}"; head -1 $TMP/seed.out; sed 1d $TMP/seed.out | jq -c '[.id, .finish, (.generated | length)]'; sed 1d $TMP/seed.out | jq -c .generated | uniq | wc -l
> exit 3
> {"id":1,"tokens":[1],"seed":-1,"finish":"error","error":"<stdin>:1: \"seed\" = -1 is outside [0, 9223372036854775807]"}
> [2,"length",6]
> [3,"length",6]
> 2

# name: a bad per-record key is reported on stderr with its record's place
$ printf '{"id":1,"tokens":[1]}\n{"id":2,"tokens":[1],"max_new":"7"}\n' | hass-verify -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf -n 1 > /dev/null
= 3
! hass-verify: error: <stdin>:2: "max_new" is not an integer
