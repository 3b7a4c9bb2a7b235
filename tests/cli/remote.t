# remote.t: the two-process mode (hass-draft | hass-verify, the back channel of hass-format(5))
# when something goes wrong: hass-draft's output held open by another process, a drafter that
# dies, stalls or answers nonsense. Every process runs under timeout(1): a hang fails the case.

# name: a subshell holding hass-draft's output open does not hang the pipe (the end of the channel closes it); what follows is decoded plainly
$ set -o pipefail; M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 2 && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && ( timeout 10 hass-draft -m $M -d $TMP/h --threads 1 < $TMP/p.jsonl; echo '{"id":"tail","tokens":[1,403]}' ) | timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c '[.id, (.generated | length), .draft]'
> [1,8,null]
> ["tail",8,null]

# name: timeout(1) at the head of the pipe (it holds hass-draft's output open too) does not hang it
$ set -o pipefail; M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h -s 2 && echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && timeout 10 hass-draft -m $M -d $TMP/h --threads 1 $TMP/p.jsonl | timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c '[.id, (.generated | length)]'
> [1,8]

# name: hass-draft killed while idle (slow producer): the records it held are lost, and hass-verify says so (exit 1)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && r() { for i in $(seq $1 $2); do echo "{\"id\":$i,\"tokens\":[1,403]}"; done; } && (r 1 4; for i in $(seq 100); do [ -e $TMP/killed ] && break; sleep 0.1; done; r 5 8) | (echo $BASHPID > $TMP/pid; exec hass-draft -m $M -d $TMP/h --threads 1) | timeout 20 hass-verify -m $M -n 4 --threads 1 > $TMP/vout & for i in $(seq 100); do [ "$(wc -l < $TMP/vout)" -ge 4 ] 2>/dev/null && break; sleep 0.1; done; kill -9 $(cat $TMP/pid); touch $TMP/killed; wait $!; echo "exit $?"; jq -c .id $TMP/vout | paste -sd' '
> exit 1
> 1 2 3 4
! the stream ended without hass-draft's end of the channel

# name: a drafter that sends its answer a byte at a time is dropped at the deadline for the whole answer ($HASS_DRAFT_TIMEOUT), and the record is decoded plainly
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && hass-verify -m $M -n 8 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/ar && timeout 10 python3 tests/e2e/fake_drafter.py slow $TMP/s.sock 0.3 < $TMP/p.jsonl | HASS_DRAFT_TIMEOUT=1 timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c .generated | cmp - $TMP/ar && echo same
> same
! no answer within 1000 ms

# name: a HASS_DRAFT_TIMEOUT that is not a number of seconds is said, and the default used
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; hass-draft -m $M --init-random $TMP/h && echo '{"id":1,"tokens":[1,403,407]}' | timeout 10 hass-draft -m $M -d $TMP/h --threads 1 | HASS_DRAFT_TIMEOUT=soon timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c '.generated | length'
> 8
! HASS_DRAFT_TIMEOUT=soon is not a number of seconds

# name: a drafter answering with token ids outside the vocabulary is dropped like any bad tree; the records are decoded plainly, not refused
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; printf '{"id":1,"tokens":[1,403,407]}\n{"id":2,"tokens":[1,300]}\n' > $TMP/p.jsonl && hass-verify -m $M -n 8 --threads 1 $TMP/p.jsonl | jq -c '[.id, .generated]' > $TMP/ar && timeout 10 python3 tests/e2e/fake_drafter.py badids $TMP/s.sock < $TMP/p.jsonl | timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c '[.id, .generated]' | cmp - $TMP/ar && echo same
> same
! tree node 1 is token -1, outside \[0, 512\)

# name: --stream: a drafter lost mid-record: the record goes on plainly from where it was, and its deltas add up to its "generated" (plain decoding's)
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; echo '{"id":1,"tokens":[1,403,407]}' > $TMP/p.jsonl && hass-verify -m $M -n 16 --threads 1 $TMP/p.jsonl | jq -c .generated > $TMP/ar && timeout 10 python3 tests/e2e/fake_drafter.py closeafter $TMP/s.sock 5 < $TMP/p.jsonl | timeout 10 hass-verify -m $M -n 16 --threads 1 --stream > $TMP/so; jq -c 'select(.generated) | .generated' $TMP/so | cmp - $TMP/ar && jq -sc '[([.[] | select(.type == "delta") | .tokens[]] == (.[] | select(.generated) | .generated)), (.[] | select(.generated) | .draft)]' $TMP/so
> [true,"lost"]

# name: every record decoded after the drafter was lost says "draft":"lost", and hass-verify exits 1 saying how many
$ set -o pipefail; M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; printf '{"id":1,"tokens":[1,403,407]}\n{"id":2,"tokens":[1,300]}\n{"id":3,"tokens":[1]}\n' | timeout 10 python3 tests/e2e/fake_drafter.py closeafter $TMP/s.sock 3 | timeout 10 hass-verify -m $M -n 8 --threads 1 | jq -c '[.id, .draft]'
> [1,"lost"]
> [2,"lost"]
> [3,"lost"]
! the drafter was lost; 3 records were decoded without it
= 1

# name: hass-draft removes the sockets that killed hass-draft processes of this user left behind, and only those
$ M=$HASS_DATA/models/stories260K/stories260K-v3-f32.gguf; mkdir -p $TMP/sd && hass-draft -m $M --init-random $TMP/h && dead=$(sh -c 'echo $$') && python3 -c "import socket,sys; [socket.socket(socket.AF_UNIX).bind(p) for p in sys.argv[1:]]" $TMP/sd/hass-draft.$dead.sock $TMP/sd/hass-draft.$$.sock && touch $TMP/sd/hass-draft.1.sock.txt && echo '{"id":1,"tokens":[1,403]}' | TMPDIR=$TMP/sd timeout 10 hass-draft -m $M -d $TMP/h --threads 1 | TMPDIR=$TMP/sd timeout 10 hass-verify -m $M -n 4 --threads 1 | jq -c '.generated | length'; ls $TMP/sd | sed "s/\.$$\./.LIVE./; s/\.$dead\./.DEAD./"
> 4
> hass-draft.1.sock.txt
> hass-draft.LIVE.sock
