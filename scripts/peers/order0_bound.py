#!/usr/bin/env python3
"""Per-tensor order-0 entropy bounds for the float tensors of a safetensors file.

  python3 scripts/peers/order0_bound.py FILE.safetensors [...] [--json] [--per-tensor]

Bits per weight, each tensor with its own order-0 table (table cost not counted), summed
over the tensors and divided by the total number of weights:

  BF16  "plane": H(exp8)   + 8   where exp8 = (u >> 7) & 0xFF, sign + 7 mantissa bits raw
  F16   "plane": H(hi8)    + 8   where hi8  = u >> 8 (sign, 5 exponent bits, 2 mantissa bits), low byte raw
  F32   "plane": H(exp8)   + 24  where exp8 = (u >> 23) & 0xFF, sign + 23 mantissa bits raw

Also reported, for reference:
  "whole"  = H(whole 16-bit symbol) per tensor for BF16/F16 (for F32: H(upper 16 bits) + 16 raw);
  "fields" = every field coded order-0 per tensor, each with its own table:
             BF16 H(exp8) + 1 (sign) + H(mant7); F16 H(hi8) + H(lo8);
             F32 H(exp8) + 1 (sign) + H(mant bits 16-22) + H(mant bits 8-15) + H(mant bits 0-7)
             (F32 mantissa bytes are not quite uniform in real checkpoints, so byte-plane coders such as
             ZipNN can go below the "exp8 + 24 raw" bound);
  "pooled" = the plane bound with one table for all tensors of that dtype in the file;
  "chunked" = the plane bound with a table per chunk of --chunk bytes of input inside each tensor
             (default 262144 = ZipNN's compression chunk), table cost not counted: adaptive tables
             can go below the per-tensor bound where a tensor's statistics drift (e.g. word embeddings).
Non-float tensors are skipped. Needs numpy.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from convert_weights import read_safetensors  # noqa: E402


def entropy_bits(counts):
    """Total bits n * H for a histogram (order-0, ideal code)."""
    c = counts[counts > 0].astype(np.float64)
    n = c.sum()
    return float(-(c * np.log2(c / n)).sum())


def planes(dt, data):
    """Return (coded symbols, number of possible symbols, raw bits per weight, whole-symbol array, whole size, whole raw bits)."""
    if dt == "BF16":
        u = np.frombuffer(data, dtype="<u2")
        return ((u >> 7) & 0xFF).astype(np.intp), 256, 8, u.astype(np.intp), 1 << 16, 0
    if dt == "F16":
        u = np.frombuffer(data, dtype="<u2")
        return (u >> 8).astype(np.intp), 256, 8, u.astype(np.intp), 1 << 16, 0
    if dt == "F32":
        u = np.frombuffer(data, dtype="<u4")
        return ((u >> 23) & 0xFF).astype(np.intp), 256, 24, (u >> 16).astype(np.intp), 1 << 16, 16
    return None


def fields(dt, data):
    """Fields coded separately by the "fields" bound: list of (symbols, alphabet size), plus raw bits."""
    if dt == "BF16":
        u = np.frombuffer(data, dtype="<u2").astype(np.intp)
        return [((u >> 7) & 0xFF, 256), (u & 0x7F, 128)], 1
    if dt == "F16":
        u = np.frombuffer(data, dtype="<u2").astype(np.intp)
        return [(u >> 8, 256), (u & 0xFF, 256)], 0
    if dt == "F32":
        u = np.frombuffer(data, dtype="<u4").astype(np.intp)
        return [((u >> 23) & 0xFF, 256), ((u >> 16) & 0x7F, 128), ((u >> 8) & 0xFF, 256), (u & 0xFF, 256)], 1
    return None


def analyse(path, chunk_bytes=262144):
    _, tensors = read_safetensors(path)
    rows = []
    pooled = {}
    for name, dt, shape, data in tensors:
        p = planes(dt, data)
        if p is None:
            continue
        sym, nsym, raw, whole, nwhole, wraw = p
        n = sym.size
        h = np.bincount(sym, minlength=nsym)
        hw = np.bincount(whole, minlength=nwhole)
        pl = pooled.setdefault(dt, [np.zeros(nsym, np.int64), 0, raw])
        pl[0] += h
        pl[1] += n
        rows.append({
            "name": name, "dtype": dt, "shape": shape, "elements": n,
            "coded_bits": entropy_bits(h), "raw_bits": raw * n,
            "whole_bits": entropy_bits(hw) + wraw * n,
            "chunked_bits": sum(entropy_bits(np.bincount(sym[i:i + chunk_bytes // (data.nbytes // n)], minlength=nsym))
                                for i in range(0, n, chunk_bytes // (data.nbytes // n))) + raw * n,
            "fields_bits": sum(entropy_bits(np.bincount(f, minlength=k)) for f, k in fields(dt, data)[0])
                           + fields(dt, data)[1] * n,
            "distinct_coded_symbols": int(np.count_nonzero(h)),
        })
        r = rows[-1]
        r["plane_bpw"] = (r["coded_bits"] + r["raw_bits"]) / n
        r["whole_bpw"] = r["whole_bits"] / n
        r["fields_bpw"] = r["fields_bits"] / n
        r["chunked_bpw"] = r["chunked_bits"] / n
    out = {"file": os.path.basename(path), "by_dtype": {}}
    for dt in pooled:
        rs = [r for r in rows if r["dtype"] == dt]
        n = sum(r["elements"] for r in rs)
        coded = sum(r["coded_bits"] for r in rs)
        raw = sum(r["raw_bits"] for r in rs)
        hist, pn, praw = pooled[dt]
        out["by_dtype"][dt] = {
            "tensors": len(rs), "elements": n,
            "plane_bound_bpw": (coded + raw) / n,
            "coded_field_bits_per_weight": coded / n,
            "raw_bits_per_weight": raw / n,
            "whole_bound_bpw": sum(r["whole_bits"] for r in rs) / n,
            "fields_bound_bpw": sum(r["fields_bits"] for r in rs) / n,
            "chunked_plane_bound_bpw": sum(r["chunked_bits"] for r in rs) / n,
            "chunk_bytes": chunk_bytes,
            "pooled_plane_bound_bpw": (entropy_bits(hist) + praw * pn) / pn,
            "distinct_coded_symbols_in_file": int(np.count_nonzero(hist)),
        }
    out["per_tensor"] = rows
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--per-tensor", action="store_true", help="list every tensor (table) / keep rows (JSON)")
    ap.add_argument("--chunk", type=int, default=262144, help="chunk size in input bytes for the chunked bound")
    a = ap.parse_args()
    results = []
    for path in a.files:
        r = analyse(path, a.chunk)
        if not a.per_tensor:
            rows = r.pop("per_tensor")
        results.append(r)
        if a.json:
            continue
        print(f"# {path}")
        if a.per_tensor:
            for t in r["per_tensor"]:
                print(f"  {t['name'][:60]:60s} {t['dtype']:5s} {t['elements']:10d} plane {t['plane_bpw']:7.3f} "
                      f"whole {t['whole_bpw']:7.3f} fields {t['fields_bpw']:7.3f}")
        for dt, s in r["by_dtype"].items():
            fld = {"BF16": "H(exp8)", "F16": "H(hi8)", "F32": "H(exp8)"}[dt]
            print(f"  {dt}: {s['tensors']} tensors, {s['elements']} weights")
            print(f"    per-tensor order-0 bound, {fld} + {s['raw_bits_per_weight']:.0f} raw: "
                  f"{s['plane_bound_bpw']:.4f} bits/weight  ({fld} = {s['coded_field_bits_per_weight']:.4f})")
            print(f"    per-tensor order-0 bound, whole {'16-bit symbol' if dt != 'F32' else 'upper 16 bits + 16 raw'}: "
                  f"{s['whole_bound_bpw']:.4f} bits/weight")
            print(f"    per-tensor order-0 bound, every field coded: {s['fields_bound_bpw']:.4f} bits/weight")
            print(f"    per-{s['chunk_bytes']}-byte-chunk order-0 plane bound (no table cost): "
                  f"{s['chunked_plane_bound_bpw']:.4f} bits/weight")
            print(f"    pooled (one table per file) plane bound: {s['pooled_plane_bound_bpw']:.4f} bits/weight, "
                  f"{s['distinct_coded_symbols_in_file']} distinct symbols")
        print()
    if a.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
