#!/usr/bin/env python3
"""Count SASS instructions in the inner decode loop of each decode_kernel instance.

Reads `cuobjdump -sass` output. For each kernel, the loop is the smallest backward branch whose
body holds a VOTE (the warp ballot) and no WARPSYNC.COLLECTIVE (the divergent fall-back copy). 'body' counts every instruction of the loop; 'hot' leaves out
the ranges skipped by conditional forward branches inside the loop (the word-ring refill, taken
about once per 256 words). Per tile-step = hot / (ILP * U).
"""
import re
import sys

func = None
funcs = {}
for line in open(sys.argv[1]):
    m = re.search(r"Function : (\S+)", line)
    if m:
        func = m.group(1)
        funcs[func] = []
        continue
    m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
    if m and func:
        funcs[func].append((int(m.group(1), 16), m.group(2)))

print(f"{'kernel':<44} {'body':>5} {'hot':>5} {'per_step':>8}  counts in hot path")
for f, ins in sorted(funcs.items()):
    m = re.match(r"_Z13decode_kernelILi(\d+)ELi(\d+)ELi(\d+)ELb(\d)E(?:Li(\d)E)?", f)
    if not m:
        continue
    n, ilp, u, direct = map(int, m.groups()[:4])
    mode = int(m.group(5) or 0)
    best = None
    for i, (a, t) in enumerate(ins):
        b = re.search(r"BRA (0x[0-9a-f]+)", t)
        if not b or "BRA.DIV" in t:
            continue
        tgt = int(b.group(1), 16)
        if tgt >= a:
            continue
        body = [(aa, tt) for aa, tt in ins if tgt <= aa <= a]
        if not any("VOTE" in tt for _, tt in body):
            continue
        if any("COLLECTIVE" in tt for _, tt in body):  # the compiler's divergent fall-back copy
            continue
        if best is None or len(body) < len(best[2]):
            best = (tgt, a, body)
    if not best:
        print(f, "no loop found")
        continue
    tgt, end, body = best
    skipped = set()
    for aa, tt in body:
        b = re.search(r"^@!?P\d BRA (0x[0-9a-f]+)", tt)
        if b:
            t2 = int(b.group(1), 16)
            if aa < t2 <= end:
                skipped.update(x for x, _ in body if aa < x < t2)
    hot = [(aa, tt) for aa, tt in body if aa not in skipped and not tt.startswith("NOP")]
    cnt = {}
    for _, tt in hot:
        op = re.sub(r"^@!?U?P\w+\s+", "", tt).split()[0].split(".")[0]
        cnt[op] = cnt.get(op, 0) + 1
    top = " ".join(f"{k}:{v}" for k, v in sorted(cnt.items(), key=lambda kv: -kv[1]))
    name = f"N={n} ilp={ilp} U={u} {'direct' if direct else 'ring'} mode={mode}"
    print(f"{name:<44} {len(body):>5} {len(hot):>5} {len(hot) / (ilp * u):>8.2f}  {top}")
