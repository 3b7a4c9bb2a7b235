# scripts/sd-prompts.py: self-distillation prompts from ShareGPT records (docs/TRAINING.md)

# name: sd-prompts.py first turns: length cap, repeated texts once, excluded ids (any sdN- prefix), human turns only
@needs /usr/bin/python3
$ printf '%s\n' '{"id":"a","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"yo"}]}' '{"id":"b","conversations":[{"from":"human","value":"hi"}]}' '{"id":"c","conversations":[{"from":"human","value":"0123456789ab"}]}' '{"id":"d","conversations":[{"from":"gpt","value":"x"}]}' '{"id":"e","conversations":[{"from":"human","value":"why"}]}' '{"id":"f","conversations":[{"from":"human","value":"  "}]}' '{"id":"g","conversations":[{"from":"human","value":"how"}]}' > $TMP/all.jsonl && echo '{"id":"sd3-g"}' > $TMP/done.jsonl && python3 scripts/sd-prompts.py $TMP/all.jsonl sd9- --max-chars 10 --exclude $TMP/done.jsonl | jq -c . | sort
> {"id":"sd9-a","messages":[{"role":"user","content":"hi"}]}
> {"id":"sd9-e","messages":[{"role":"user","content":"why"}]}
! sd-prompts: 2 prompts \(1 ids excluded\)

# name: sd-prompts.py shuffles by --seed, the same order for the same seed
@needs /usr/bin/python3
$ for i in $(seq 20); do echo "{\"id\":\"q$i\",\"conversations\":[{\"from\":\"human\",\"value\":\"t$i\"}]}"; done > $TMP/all.jsonl && a=$(python3 scripts/sd-prompts.py $TMP/all.jsonl p- --seed 3 2>/dev/null | jq -r .id | tr '\n' ' ') && b=$(python3 scripts/sd-prompts.py $TMP/all.jsonl p- --seed 3 2>/dev/null | jq -r .id | tr '\n' ' ') && c=$(python3 scripts/sd-prompts.py $TMP/all.jsonl p- --seed 4 2>/dev/null | jq -r .id | tr '\n' ' ') && [ "$a" = "$b" ] && [ "$a" != "$c" ] && echo "$a" | tr ' ' '\n' | grep -c q
> 20

# name: sd-prompts.py --continue: user, the self-distilled answer, ShareGPT's next human turn; id base + ":t2"
@needs /usr/bin/python3
$ printf '%s\n' '{"id":"a","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"yo"},{"from":"human","value":"more"}]}' '{"id":"b","conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"r"}]}' '{"id":"c","conversations":[{"from":"human","value":"x"},{"from":"gpt","value":"y"},{"from":"human","value":"again"}]}' > $TMP/all.jsonl && printf '%s\n' '{"id":"sd2-a","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}' '{"id":"sd2-b","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"s"}]}' '{"id":"sd4-c","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"z"}]}' > $TMP/convos.jsonl && echo '{"id":"sd8-c:t2"}' > $TMP/old.jsonl && python3 scripts/sd-prompts.py $TMP/all.jsonl sd9- --continue $TMP/convos.jsonl --exclude $TMP/old.jsonl
> {"id": "sd9-a:t2", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]}
! sd-prompts: 1 second-turn prompts \(1 ids excluded\)

# name: sd-prompts.py names the file and line of a record that is not ShareGPT's
@needs /usr/bin/python3
$ printf '%s\n' '{"id":"a","conversations":[]}' '{"id":"b"}' > $TMP/all.jsonl && python3 scripts/sd-prompts.py $TMP/all.jsonl p-
= 1
! all\.jsonl:2: not a ShareGPT record
