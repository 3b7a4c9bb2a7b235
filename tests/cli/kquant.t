# kquant.t: bad K-quant tensors in a GGUF get a clear error and exit 3 (issue 23). Each file is
# written here byte by byte: GGUF v3, one tensor 'token_embd.weight' of 2 dimensions, no metadata:
#   "GGUF" u32 3 | u64 1 tensor | u64 0 kv | u64 17 "token_embd.weight" | u32 2 dims | u64 ne0 |
#   u64 ne1 | u32 ggml type | u64 offset 0 | then the data, if any.

# name: a Q4_K tensor of row length 128 (not a multiple of 256) is refused, exit 3
$ printf 'GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x11\0\0\0\0\0\0\0token_embd.weight\x02\0\0\0\x80\0\0\0\0\0\0\0\x04\0\0\0\0\0\0\0\x0c\0\0\0\0\0\0\0\0\0\0\0' > $TMP/q4k128.gguf && hass-verify -m $TMP/q4k128.gguf < /dev/null
! token_embd\.weight: row length 128 is not a multiple of Q4_K's block of 256 values$
= 3

# name: a Q6_K tensor of row length 896 (Qwen2.5-0.5B's width, 3.5 super-blocks) is refused, exit 3
$ printf 'GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x11\0\0\0\0\0\0\0token_embd.weight\x02\0\0\0\x80\x03\0\0\0\0\0\0\x04\0\0\0\0\0\0\0\x0e\0\0\0\0\0\0\0\0\0\0\0' > $TMP/q6k896.gguf && hass-bench -m $TMP/q6k896.gguf
! token_embd\.weight: row length 896 is not a multiple of Q6_K's block of 256 values$
= 3

# name: a Q4_K tensor whose super-block table runs past the end of the file is refused, exit 3
$ { printf 'GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x11\0\0\0\0\0\0\0token_embd.weight\x02\0\0\0\0\x01\0\0\0\0\0\0\x02\0\0\0\0\0\0\0\x0c\0\0\0\0\0\0\0\0\0\0\0'; head -c 200 /dev/zero; } > $TMP/q4ktrunc.gguf && hass-verify -m $TMP/q4ktrunc.gguf < /dev/null
! tensor 'token_embd\.weight': data \[0, \+288\) runs past the end of the file \(185 data bytes\): file truncated\?$
= 3
