# stream.t: the record streams (man/hass-format.5) through hass-cat: JSONL and binary
# encodings, round trips, and every kind of bad input (bad JSON, CRC, truncation, magic,
# version, limits, a writer killed mid-stream, SIGPIPE, an unwritable output).

# name: JSONL passes through unchanged (unknown keys, key order, nested values)
$ hass-cat
< {"id":"a","tokens":[1,2,3],"meta":{"x":[1,2]},"t":0.5,"note":"é"}
< {"z":1,"id":7,"tokens":[]}
> {"id":"a","tokens":[1,2,3],"meta":{"x":[1,2]},"t":0.5,"note":"é"}
> {"z":1,"id":7,"tokens":[]}

# name: JSONL -> binary -> JSONL round-trips byte for byte
$ hass-cat --bin > $TMP/a.bin && hass-cat $TMP/a.bin
< {"id":"a","tokens":[1,2,-3,2147483647],"m":{"x":[1]},"t":0.5}
< {"id":"b","tokens":[],"z":[1,"a"],"big":[2147483648]}
< {"generated":[7],"id":7,"tokens":[9],"error":null}
> {"id":"a","tokens":[1,2,-3,2147483647],"m":{"x":[1]},"t":0.5}
> {"id":"b","tokens":[],"z":[1,"a"],"big":[2147483648]}
> {"generated":[7],"id":7,"tokens":[9],"error":null}

# name: binary stream starts with the 16-byte header (magic, version 1, size 16, fp, flags)
$ hass-cat --bin --vocab-fp 0a0b0c0d | od -An -tx1 -N16
< {"id":"a"}
>  48 41 53 53 01 00 10 00 0d 0c 0b 0a 00 00 00 00

# name: --list shows the header and one line per frame
$ hass-cat --bin --vocab-fp 1234abcd | hass-cat --list
< {"id":"a","tokens":[1,2,3]}
< {"id":"b"}
> <stdin>: stream 1: version 1, header 16 bytes, vocab_fp 1234abcd, flags 0
> frame 1 seq 0 type 1 RECORD 55 bytes crc ok
> frame 2 seq 1 type 1 RECORD 18 bytes crc ok
> frame 3 seq 2 type 2 END 4 bytes crc ok

# name: binary -> binary keeps the vocabulary fingerprint
$ hass-cat --bin --vocab-fp 1234abcd | hass-cat --bin | od -An -tx1 -j8 -N4
< {"id":"a"}
>  cd ab 34 12

# name: non-JSON line: an error record naming the line, the other records still pass, exit 3
$ hass-cat
< {"id":"a"}
< not json
< {"id":"c"}
> {"id":"a"}
> {"line":2,"error":"<stdin>:2: not JSON: '[' or '{' expected near 'not' (column 3)"}
> {"id":"c"}
= 3
! hass-cat: error: <stdin>:2: not JSON

# name: bad CRC: an error record for that frame, the following frames still read, exit 3
$ printf '{"id":"a","tokens":[1,2]}\n{"id":"b"}\n' | hass-cat --bin > $TMP/c.bin && printf 'X' | dd of=$TMP/c.bin bs=1 seek=40 conv=notrunc 2>/dev/null && hass-cat $TMP/c.bin
~ ^\{"frame":1,"error":".*c\.bin:frame 1: crc mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)"\}$
~ ^\{"id":"b"\}$
= 3
! crc mismatch

# name: truncated binary (writer killed mid-frame): the records before it, then an error, exit 3
$ printf '{"id":"a","tokens":[1,2]}\n{"id":"b","tokens":[3]}\n' | hass-cat --bin | head -c 100 | hass-cat
> {"id":"a","tokens":[1,2]}
> {"frame":2,"error":"<stdin>:frame 2: truncated frame payload (5 of 47 bytes)"}
= 3

# name: binary cut at a frame boundary (no END frame) is still reported as truncated
$ printf '{"id":"a"}\n' | hass-cat --bin | head -c 50 | hass-cat
~ ^\{"id":"a"\}$
~ truncated stream: input ended after 1 frames without an END frame
= 3

# name: writer killed mid-line (JSONL): the partial last line is an error record, exit 3
$ printf '{"id":"a"}\n{"id":"b","tok' | hass-cat
~ ^\{"id":"a"\}$
~ ^\{"line":2,"error":"<stdin>:2: not JSON
= 3

# name: a newer binary version is refused with a hint, exit 3
$ printf 'HASS\002\000\020\000\000\000\000\000\000\000\000\000' | hass-cat
= 3
! binary stream version 2, this build reads version 1

# name: a frame announcing more than 64 MiB is refused before allocating, exit 3
$ printf 'HASS\001\000\020\000\000\000\000\000\000\000\000\000\001\000\000\000\000\000\000\000\001\000\000\004' | hass-cat
= 3
! frame payload of 67108865 bytes is over the 67108864-byte limit

# name: input that is neither JSONL nor binary is malformed input, exit 3
$ printf 'GIF89a' | hass-cat
= 3
! input is neither JSONL .* nor a hass binary stream .*: first byte 0x47

# name: binary streams back to back (shards) read as one input
$ printf '{"id":"a"}\n' | hass-cat --bin > $TMP/s1.bin; printf '{"id":"b"}\n' | hass-cat --bin > $TMP/s2.bin; cat $TMP/s1.bin $TMP/s2.bin | hass-cat
> {"id":"a"}
> {"id":"b"}

# name: several inputs, JSONL and binary mixed, in order
$ printf '{"id":"b"}\n' | hass-cat --bin > $TMP/m.bin; printf '{"id":"a"}\n' > $TMP/m.jsonl; hass-cat $TMP/m.jsonl $TMP/m.bin
> {"id":"a"}
> {"id":"b"}

# name: unknown frame types pass through binary -> JSONL -> binary unchanged
$ printf 'HASS\001\000\020\000\000\000\000\000\000\000\000\000\115\000\000\000\000\000\000\000\002\000\000\000\001\377\252\201\051\136\002\000\000\000\001\000\000\000\004\000\000\000\001\000\000\000\306\113\110\314' > $TMP/u.bin; hass-cat $TMP/u.bin; hass-cat $TMP/u.bin | hass-cat --bin | cmp - $TMP/u.bin && echo same
> {"_hass_frame":{"type":77,"payload":"01ff"}}
> same

# name: records that failed upstream are forwarded and make the exit code say so
$ hass-cat
< {"id":"a","error":"upstream: bad"}
< {"id":"b"}
> {"id":"a","error":"upstream: bad"}
> {"id":"b"}
= 1

# name: --test checks a binary stream without writing anything
$ printf '{"id":"a"}\n' | hass-cat --bin > $TMP/t.bin && hass-cat --test $TMP/t.bin && head -c 30 $TMP/t.bin | hass-cat --test
= 3
! truncated

# name: SIGPIPE: a reader that goes away ends the writer quietly
$ for i in $(seq 20000); do echo '{"id":"x","tokens":[1,2,3]}'; done > $TMP/big.jsonl; hass-cat $TMP/big.jsonl 2>$TMP/pipe.err | head -1; echo "status ${PIPESTATUS[0]} stderr $(wc -c < $TMP/pipe.err)"
> {"id":"x","tokens":[1,2,3]}
> status 141 stderr 0

# name: output file that cannot be written: runtime error, exit 1
$ echo '{"id":"a"}' | hass-cat -o /nonexistent/dir/out.jsonl
= 1
! hass-cat: error: /nonexistent/dir/out.jsonl: No such file or directory

# name: output device full: the write error is reported, exit 1
@needs /dev/full
$ echo '{"id":"a"}' | hass-cat -o /dev/full
= 1
! write failed: No space left on device

# name: unreadable input file: runtime error naming it, exit 1
$ hass-cat /nonexistent.jsonl
= 1
! /nonexistent.jsonl: No such file or directory

# name: bad --vocab-fp is a usage error
$ hass-cat --vocab-fp xyz
= 2
! --vocab-fp: 'xyz' is not a 32-bit hex number

# name: SIGPIPE ignored by the parent: the EPIPE write error ends the writer quietly, exit 1
$ for i in $(seq 20000); do echo '{"id":"x"}'; done > $TMP/big2.jsonl; (trap '' PIPE; hass-cat $TMP/big2.jsonl 2>$TMP/ep.err | head -1; echo "status ${PIPESTATUS[0]} stderr $(wc -c < $TMP/ep.err)")
> {"id":"x"}
> status 1 stderr 0

# name: binary output to a terminal is refused (usage error) unless -f
@needs /usr/bin/script
$ script -qec "hass-cat --bin $TMP/none.jsonl" /dev/null < /dev/null | tr -d '\r'; echo "exit ${PIPESTATUS[0]}"
> hass-cat: error: stdout is a terminal; pipe it, use -o or -f
> exit 2

# name: an END frame counting 99 frames after 1 is an error record after the records, exit 3
$ printf 'HASS\001\000\020\000\000\000\000\000\000\000\000\000\115\000\000\000\000\000\000\000\002\000\000\000\001\377\252\201\051\136\002\000\000\000\001\000\000\000\004\000\000\000\143\000\000\000\116\164\147\135' | hass-cat
> {"_hass_frame":{"type":77,"payload":"01ff"}}
> {"frame":2,"error":"<stdin>:frame 2: END frame says 99 frames came before it, the stream had 1 (frames lost or added)"}
= 3

# name: --list checks an END frame's count too (it printed a wrong count as "crc ok"), exit 3
$ printf 'HASS\001\000\020\000\000\000\000\000\000\000\000\000\115\000\000\000\000\000\000\000\002\000\000\000\001\377\252\201\051\136\002\000\000\000\001\000\000\000\004\000\000\000\143\000\000\000\116\164\147\135' | hass-cat --list
~ ^frame 2 seq 1 type 2 END 4 bytes crc ok$
! <stdin>:frame 2: END frame says 99 frames came before it, the stream had 1
= 3

# name: an END frame with an empty payload is bad input in every reader (hass-detok here), exit 3
$ printf 'HASS\001\000\020\000\000\000\000\000\000\000\000\000\115\000\000\000\000\000\000\000\002\000\000\000\001\377\252\201\051\136\002\000\000\000\001\000\000\000\000\000\000\000\156\130\104\133' | hass-detok -m $HASS_DATA/models/stories260K/stories260K-v3-f32.gguf
~ "error":"<stdin>:frame 2: END frame has a 0-byte payload
! END frame has a 0-byte payload
= 3

# name: JSONL input starting with empty lines reads (it crashed the reader: a NUL stored through a null buffer)
$ printf '\n\n{"a":1}\n' | hass-cat
> {"a":1}
