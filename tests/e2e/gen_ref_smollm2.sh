#!/usr/bin/env bash
# gen_ref_smollm2.sh: hass-tokenize | hass-verify --temp 0 | hass-detok on SmolLM2-135M-Instruct
# (Q4_1) against llama.cpp's greedy continuations of the 14 reference prompts, with the engine's
# tolerance rule (tests/unit/test_forward_ref.c): every divergence must be a near tie (llama.cpp's
# top1-top2 margin < 0.5 logits at the first differing step, printed with ours); the number of
# identical prompts is printed but not required, because 8-bit activation rounding in the Q4_1
# path makes our two kernel paths disagree with each other as often as with llama.cpp.
cd "$(dirname "$0")/../.."
M=$HASS_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf
F=tests/data/ref_smollm2_prompts.jsonl
[ -e "$M" ] || { echo "no $M (make models)"; exit 77; }
bash tests/ref-greedy.sh "$M" "$F" text 0
