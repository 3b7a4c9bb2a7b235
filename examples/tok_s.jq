# examples/tok_s.jq: summarise a hass-verify run. Input: the output records as one array
# (jq -s -f examples/tok_s.jq results.jsonl). Output: records, failed, tokens generated,
# prefill and decode seconds, end-to-end tokens/s (tokens over prefill + decode time) and
# decode tokens/s (one-token steps over decode time, weighted by each record's decode time).
map(select(.type != "delta"))
| (map(select(.generated)) ) as $ok
| ($ok | map(.timing.decode_ms) | add // 0) as $dec
| ($ok | map(.timing.prefill_ms) | add // 0) as $pre
| ($ok | map(.generated | length) | add // 0) as $tok
| {
    records: length,
    failed: (map(select(.error)) | length),
    tokens: $tok,
    prefill_s: ($pre / 1000),
    decode_s: ($dec / 1000),
    tok_s: (if $pre + $dec > 0 then $tok / (($pre + $dec) / 1000) else 0 end),
    decode_tok_s: (if $dec > 0 then ($ok | map(.timing.tok_s * .timing.decode_ms) | add) / $dec
                   else 0 end)
  }
