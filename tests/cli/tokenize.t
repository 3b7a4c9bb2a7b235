# hass-tokenize: text, messages, --chat, --no-bos, --special, bad input, vocab sources.

# name: tokenize text with the model's BOS (stories260K, GGUF v3)
$ hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
< {"id":"a","text":"Once upon a time","keep":{"x":[1,2]}}
> {"id":"a","text":"Once upon a time","keep":{"x":[1,2]},"tokens":[1,403,407,261,378]}

# name: --no-bos; GGUF v1 reads the same vocabulary
$ hass-tokenize -m $HASS_DATA/models/stories260K/tinyllamas-stories-260k-f32.gguf --no-bos
< {"text":"Once upon a time"}
> {"text":"Once upon a time","tokens":[403,407,261,378]}

# name: llama.cpp vector "Hello world" on vocab-only GGUFs (SPM and GPT-2)
$ for v in llama-spm gpt-2; do echo '{"text":" Hello world"}' | hass-tokenize -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-$v.gguf --no-bos; done
> {"text":" Hello world","tokens":[29871,15043,3186]}
> {"text":" Hello world","tokens":[18435,995]}

# name: special tokens are text unless --special (ids as llama.cpp: "Hi" after <s> gets the space prefix)
$ for f in "" --special; do echo '{"text":"<s>Hi</s>"}' | hass-tokenize -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf --no-bos $f; done
> {"text":"<s>Hi</s>","tokens":[529,29879,29958,18567,829,29879,29958]}
> {"text":"<s>Hi</s>","tokens":[1,6324,2]}

# name: bad records get error records, the rest is processed, exit 3
$ hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --no-bos
< {"id":1,"text":"Once"}
< not json
< {"id":2}
< {"id":3,"text":42}
< {"id":4,"messages":[{"role":"user"}],"template":"x"}
< {"id":5,"text":"upon"}
> {"id":1,"text":"Once","tokens":[403]}
> {"line":2,"error":"<stdin>:2: not JSON: '[' or '{' expected near 'not' (column 3)"}
> {"id":2,"error":"<stdin>:3: record has neither \"text\" nor \"messages\""}
> {"id":3,"text":42,"error":"<stdin>:4: \"text\" is not a string"}
> {"id":4,"messages":[{"role":"user"}],"template":"x","error":"<stdin>:5: the model has no chat template; choose one by name (llama-2-chat, llama-3, chatml, vicuna)"}
> {"id":5,"text":"upon","tokens":[407]}
= 3
! 4 of 6 records failed

# name: invalid UTF-8 in a line is an error record for that line
$ printf '{"text":"a\xffb"}\n{"text":"a"}\n' | hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --no-bos
~ ^\{"line":1,"error":"<stdin>:1: not JSON: unable to decode byte 0xff
~ ^\{"text":"a","tokens":\[261\]\}$
= 3

# name: a text over --max-text is an error record, the next record goes on
$ hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --no-bos --max-text 8
< {"text":"Once upon a time"}
< {"text":"Once"}
> {"text":"Once upon a time","error":"<stdin>:1: text is 16 bytes, more than --max-text 8"}
> {"text":"Once","tokens":[403]}
= 3

# name: a line over the reader's 64 MiB limit is an error record
$ { printf '{"text":"'; head -c 70000000 /dev/zero | tr '\0' a; echo '"}'; echo '{"text":"Once"}'; } | hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --no-bos
~ "error":"<stdin>:1: line longer than
~ ^\{"text":"Once","tokens":\[403\]\}$
= 3

# name: --template with llama-2-chat on messages (BOS from the template, not added twice)
$ hass-tokenize -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf --template llama-2-chat | grep -o '"tokens":\[1,[0-9]*' | sed 's/,.*//'
< {"messages":[{"role":"user","content":"Hi"}]}
> "tokens":[1

# name: unknown template names the flag, exit 2
$ hass-tokenize -m x --template nope
= 2
! --template: unknown chat template 'nope'

# name: missing model file, exit 1
$ hass-tokenize -m /nonexistent.gguf
= 1
! /nonexistent.gguf: No such file or directory

# name: an empty model file says so, exit 3 (not a JSON parser's message)
$ : > $TMP/empty; hass-tokenize -m $TMP/empty
= 3
! error: .*/empty: empty file$

# name: a 3-byte model file has a bad magic, exit 3
$ printf abc > $TMP/three; hass-tokenize -m $TMP/three
= 3
! error: .*/three: not a GGUF file \(bad magic\)$

# name: a model file of zeros has a bad magic, exit 3
$ head -c 1000 /dev/zero > $TMP/zero.gguf; hass-tokenize -m $TMP/zero.gguf
= 3
! error: .*/zero.gguf: not a GGUF file \(bad magic\)$

# name: /dev/zero as the model is not a regular file, exit 1 (as for hass-verify --inspect)
$ hass-tokenize -m /dev/zero
= 1
! error: /dev/zero: not a regular file$

# name: LLaMA-3 from encoder.json + vocab.bpe + tokenizer_config.json, specials parsed in chat
$ d=$TMP/l3; mkdir -p $d; for f in encoder.json vocab.bpe; do ln -sf $PWD/$HASS_DATA/tokenizer/llama3/$f $d/; done; ln -sf $PWD/$HASS_DATA/tokenizer/hf/Meta-Llama-3-8B-Instruct/tokenizer_config.json $d/; echo '{"messages":[{"role":"user","content":"Hello world"}]}' | hass-tokenize -m $d
> {"messages":[{"role":"user","content":"Hello world"}],"tokens":[128000,128006,882,128007,271,9906,1917,128009,128006,78191,128007,271]}

# name: --info describes the vocabulary (fingerprint, EOG tokens, template)
@needs $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
$ hass-tokenize -m $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf --info
> {"kind":"bpe","pre":"smollm","n_vocab":49152,"bos":1,"eos":2,"add_bos":false,"fingerprint":"3e153845","chat_template":"chatml","eog":[0,2]}

# name: SmolLM2 --chat uses its ChatML template with the default system prompt
@needs $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
$ hass-tokenize -m $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf --chat | hass-detok -m $HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf --field tokens --keep-special --text-key rendered
< {"text":"Hi"}
> {"text":"Hi","tokens":[1,9690,198,2683,359,253,5356,5646,11173,3365,3511,308,34519,28,7018,411,407,19712,8182,2,198,1,4093,198,26843,2,198,1,520,9531,198],"rendered":"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"}

# name: Qwen2.5 gets its template's default system turn when the messages start without one (issue 23; ids as llama.cpp's)
@needs $HASS_MODELS/Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf
$ m=$HASS_MODELS/Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf; hass-tokenize -m $m | hass-detok -m $m --field tokens --keep-special --text-key rendered
< {"messages":[{"role":"user","content":"Hi"}]}
< {"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}
> {"messages":[{"role":"user","content":"Hi"}],"tokens":[151644,8948,198,2610,525,1207,16948,11,3465,553,54364,14817,13,1446,525,264,10950,17847,13,151645,198,151644,872,198,13048,151645,198,151644,77091,198],"rendered":"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"}
> {"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"tokens":[151644,8948,198,3430,9814,13,151645,198,151644,872,198,13048,151645,198,151644,77091,198],"rendered":"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"}

# name: the EXAMPLES of man/hass-tokenize.1 and man/hass-detok.1 run and succeed
$ for m in man/hass-tokenize.1 man/hass-detok.1; do sed -n '/^\.EX$/,/^\.EE$/p' $m | sed '/^\.E[XE]$/d' | bash -e || echo "FAILED $m"; done | grep -c '"tokens"\|"back"\|"kind"\|"text"'
> 6

# name: a SentencePiece tokenizer.model gives the ids of the same vocabulary's GGUF
$ echo '{"text":" Hello world"}' | hass-tokenize -m $HASS_DATA/tokenizer/llama2/tokenizer.model
> {"text":" Hello world","tokens":[1,29871,15043,3186]}

# name: ShareGPT conversations with --mask: 1 on the assistant turn and its end-of-turn token
$ hass-tokenize -m $HASS_DATA/tokenizer/llama.cpp/ggml-vocab-llama-spm.gguf --template llama-2-chat --mask --no-gen-prompt
< {"conversations":[{"from":"human","value":"Hi"},{"from":"gpt","value":"Yo"}]}
> {"conversations":[{"from":"human","value":"Hi"},{"from":"gpt","value":"Yo"}],"tokens":[1,518,25580,29962,6324,518,29914,25580,29962,612,29877,29871,2],"loss_mask":[0,0,0,0,0,0,0,0,0,1,1,1,1]}
