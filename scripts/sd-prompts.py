#!/usr/bin/env python3
"""scripts/sd-prompts.py: prompts for self-distillation (docs/TRAINING.md) from ShareGPT.

Reads ShareGPT records ({"id", "conversations": [{"from", "value"}, ...]}, as written by
scripts/fetch-sharegpt.sh), keeps the first human turn of each conversation when it has at most
--max-chars characters, drops repeated texts (the first kept) and conversations whose id is in
an --exclude file, shuffles with Python's random.Random(--seed), and writes one
{"id": PREFIX + id, "messages": [{"role": "user", "content": text}]} per line on stdout, the
input of `hass-tokenize | hass-verify | hass-detok`. --exclude files are JSONL (or .gz) records
with an "id"; a prefix of letters and digits ending in '-' (sd2-) is ignored when matching.

  usage: scripts/sd-prompts.py ALL.jsonl PREFIX [--max-chars N] [--seed S] [--exclude F ...]
"""
import argparse
import gzip
import json
import random
import re
import sys


def base_id(rid):
    """A conversation id without its 'sdN-' prefix: the ShareGPT id every round shares."""
    return re.sub(r"^[A-Za-z0-9]+-(?=.)", "", str(rid))


def ids_of(path):
    """The conversation ids of a JSONL (or gzipped JSONL) file, any 'sdN-' prefix removed."""
    op = gzip.open if path.endswith(".gz") else open
    out = set()
    with op(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.add(base_id(json.loads(line)["id"]))
            except (ValueError, KeyError) as e:
                sys.exit(f"sd-prompts: {path}:{n}: no id ({e})")
    return out


def records(path):
    """The ShareGPT records of a JSONL file, each with its list of turns."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                yield r, r["conversations"]
            except (ValueError, KeyError) as e:
                sys.exit(f"sd-prompts: {path}:{n}: not a ShareGPT record ({e})")


def emit(out, seed, what, n_skip):
    """Print the prompts out in an order shuffled by seed, and their count on stderr."""
    random.Random(seed).shuffle(out)
    for r in out:
        print(json.dumps(r))
    print(f"sd-prompts: {len(out)} {what} ({n_skip} ids excluded)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("all", help="ShareGPT JSONL (scripts/fetch-sharegpt.sh)")
    ap.add_argument("prefix", help="prefix of the output ids (e.g. sd2-)")
    ap.add_argument("--max-chars", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--exclude", nargs="*", default=[], help="files whose ids are left out")
    ap.add_argument("--continue", dest="cont", nargs="*", default=[],
                    help="self-distilled conversations to continue with their next human turn")
    a = ap.parse_args()
    skip = set()
    for p in a.exclude:
        skip |= ids_of(p)
    if a.cont:
        second_turns(a, skip)
        return
    seen, out = set(), []
    for r, turns in records(a.all):
        if not turns or turns[0].get("from") != "human":
            continue
        text = turns[0].get("value", "")
        if not text.strip() or len(text) > a.max_chars or text in seen or r["id"] in skip:
            continue
        seen.add(text)
        out.append({"id": a.prefix + r["id"], "messages": [{"role": "user", "content": text}]})
    emit(out, a.seed, "prompts", len(skip))


def second_turns(a, skip):
    """Print the second-turn prompts of --continue's conversations (see the module's text)."""
    nxt = {}
    for r, turns in records(a.all):
        if len(turns) >= 3 and [t.get("from") for t in turns[:3]] == ["human", "gpt", "human"]:
            nxt[r["id"]] = turns[2].get("value", "")
    out, seen = [], set()
    for p in a.cont:
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    c = json.loads(line)
                    base, msgs = base_id(c["id"]), c["messages"]
                except (ValueError, KeyError) as e:
                    sys.exit(f"sd-prompts: {p}:{n}: not a conversation ({e})")
                oid = base + ":t2"
                text = nxt.get(base, "")
                if (oid in skip or oid in seen or not text.strip() or len(msgs) != 2 or
                        [m.get("role") for m in msgs] != ["user", "assistant"]):
                    continue
                if sum(len(m.get("content", "")) for m in msgs) + len(text) > a.max_chars:
                    continue
                seen.add(oid)
                out.append({"id": a.prefix + oid, "messages": msgs + [{"role": "user", "content": text}]})
    emit(out, a.seed, "second-turn prompts", len(skip))


if __name__ == "__main__":
    main()
