#!/usr/bin/env python3
"""Write an all-F32 copy of a GGUF (every tensor dequantized by gguf.quants.dequantize).

Used only to check the numpy reference forward against llama.cpp without llama.cpp's
activation quantization: llama.cpp on F32 weights (and an f32 KV cache) does plain f32 math.
The output is large (about 540 MB for SmolLM2-135M) and must not be committed; write it to /tmp.
Usage: python3 tests/gen/gen_ref_f32gguf.py IN.gguf OUT.gguf
"""
import sys

import numpy as np

import gguf
from gguf.quants import dequantize


def main():
    src, dst = sys.argv[1], sys.argv[2]
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        vt = f.types[0]
        if k == "general.file_type":
            w.add_key_value(k, 0, vt)  # ALL_F32
            continue
        sub = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(k, f.contents(), vt, sub)
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape([int(x) for x in reversed(t.shape)])
        w.add_tensor(t.name, a, raw_dtype=gguf.GGMLQuantizationType.F32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
