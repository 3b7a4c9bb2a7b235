#!/usr/bin/env python3
"""fake_drafter.py MODE SOCKET [ARG]: a misbehaving hass-draft for tests/cli/remote.t.

Like `hass-draft -d HEAD`, it copies the JSONL stream on stdin to stdout between the channel's
announcement (the fingerprints of stories260K) and its end, and answers the verifier's TREE
questions on the Unix socket SOCKET (frames of hass-format(5), BACK CHANNEL), badly:
  slow SECONDS   a one-node tree, sent one byte every SECONDS
  badids         a tree of the root and two out-of-vocabulary ids (-1, 999999)
  closeafter N   N good one-node trees (the root alone), then it closes the connection
"""
import json
import os
import socket
import struct
import sys
import threading
import time
import zlib

MAGIC = 0x43445348
TARGET_FP, TOKENIZER_FP = "67ad6f42", "457d0f7d"  # stories260K-v3-f32.gguf


def frame(kind, payload):
    """One frame: header, payload, CRC."""
    return struct.pack("<III", MAGIC, kind, len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


def recv_exact(conn, n):
    """n bytes, or None when the verifier closed the connection."""
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def answer(conn, mode, arg, root):
    """The bad answer to TREE for root."""
    if mode == "slow":
        for b in frame(4, struct.pack("<3i", 1, root, -1)):
            conn.sendall(bytes([b]))
            time.sleep(float(arg))
    elif mode == "badids":
        conn.sendall(frame(4, struct.pack("<7i", 3, root, -1, 999999, -1, 0, 0)))
    else:
        conn.sendall(frame(4, struct.pack("<3i", 1, root, -1)))


def serve(lsock, mode, arg):
    """Serve one verifier until it closes the connection (or a send fails)."""
    conn, _ = lsock.accept()
    trees = 0
    try:
        while True:
            hdr = recv_exact(conn, 12)
            if hdr is None:
                return
            _, kind, n = struct.unpack("<III", hdr)
            payload = recv_exact(conn, n + 4)
            if payload is None:
                return
            if kind == 3:
                if mode == "closeafter" and trees == int(arg):
                    conn.close()
                    return
                answer(conn, mode, arg, struct.unpack("<i", payload[:4])[0])
                trees += 1
    except OSError:
        return


def main():
    mode, path = sys.argv[1], sys.argv[2]
    arg = sys.argv[3] if len(sys.argv) > 3 else None
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    lsock.bind(path)
    lsock.listen(1)
    th = threading.Thread(target=serve, args=(lsock, mode, arg), daemon=True)
    th.start()
    out = sys.stdout
    out.write(json.dumps({"type": "draft_channel", "proto": 1, "socket": path, "target_fp": TARGET_FP,
                          "tokenizer_fp": TOKENIZER_FP, "tree": {"total": 60, "depth": 6, "topk": 10}}) + "\n")
    out.flush()
    for line in sys.stdin:
        out.write(line)
        out.flush()
    out.write('{"type":"draft_channel_end"}\n')
    out.close()
    th.join(20)
    os.unlink(path)


if __name__ == "__main__":
    main()
