#!/usr/bin/env python3
"""Measure ZipNN (PyPI `zipnn`) on every float tensor of a safetensors file.

  python3 scripts/peers/zipnn_bench.py FILE.safetensors [--json] [--repeats 3] [--threads 1]

Per float tensor (BF16/F16/F32), compressed alone as ZipNN does in its safetensors mode:
elements, compressed bytes, bits per weight (8 * compressed / elements), decode GB/s of
decoded output bytes (best of --repeats decode passes over the file), and the totals (GB/s = all output bytes / sum of
the best times). Every decode is checked byte for byte against the input.

ZipNN allocates its output on every decode. By default that memory is fresh (glibc mmaps
buffers of more than 128 KiB, so each decode pays first-touch page faults, as a one-shot
decode of a checkpoint does); --warm makes glibc reuse the freed memory instead, which is
what decoding into a preallocated buffer costs. The JSON says which ("alloc").

ZipNN is used through its public API on byte input:
    ZipNN(input_format="byte", bytearray_dtype="bfloat16"|"float16"|"float32", threads=1)
    .compress(bytearray) / .decompress(bytes)
with its defaults otherwise (method AUTO = byte grouping + Huffman (FSE's huf), 256 KiB chunks,
compression_threshold 0.95). ZipNN rotates bits of its input buffer in place, so it is
given a copy.

zipnn 0.5.4 imports torch and safetensors.torch at import time but its byte path never uses
them. When torch is not installed, a minimal stand-in module is registered so that `import zipnn`
succeeds; the JSON reports "torch": "stub". Install (no torch needed):
    python3 -m pip install numpy && python3 -m pip install --no-deps zipnn==0.5.4
(zipnn 0.5.4 is an sdist with a C extension: needs a C compiler and the Python headers).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from convert_weights import read_safetensors  # noqa: E402

WARM_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
ZDTYPE = {"BF16": ("bfloat16", 2), "F16": ("float16", 2), "F32": ("float32", 4)}


def import_zipnn():
    try:
        import torch  # noqa: F401
        torch_kind = "real"
    except ImportError:
        torch_kind = "stub"

        class _Dtype:
            def __init__(self, name):
                self.name = name

            def __repr__(self):
                return f"stub-torch.{self.name}"

        class _Stub(types.ModuleType):
            def __getattr__(self, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                v = _Dtype(name)
                setattr(self, name, v)
                return v

        torch = _Stub("torch")
        torch.Tensor = type("Tensor", (), {})
        torch.device = type("device", (), {})
        torch.jit = types.SimpleNamespace(script=lambda f: f)
        torch.__version__ = "0+stub"
        sys.modules["torch"] = torch
        try:
            import safetensors.torch  # noqa: F401
        except Exception:
            st = types.ModuleType("safetensors")
            st.__path__ = []
            stt = types.ModuleType("safetensors.torch")
            stt.safe_open = None
            st.torch = stt
            sys.modules["safetensors"] = st
            sys.modules["safetensors.torch"] = stt
    import zipnn
    try:
        from importlib.metadata import version
        zver = version("zipnn")
    except Exception:
        zver = "?"
    return zipnn, zver, torch_kind


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def bench_file(path, repeats, threads, zipnn):
    """Compress every float tensor, then make `repeats` decode passes over all of them and keep
    each tensor's best time (passes rather than back-to-back repeats, so one stall of the
    machine does not spoil all the runs of a tensor)."""
    _, tensors = read_safetensors(path)
    rows = []
    skipped = []
    work = []
    for name, dt, shape, data in tensors:
        if dt not in ZDTYPE:
            skipped.append({"name": name, "dtype": dt, "bytes": data.nbytes})
            continue
        zdt, size = ZDTYPE[dt]
        raw = bytes(data)
        z = zipnn.ZipNN(input_format="byte", bytearray_dtype=zdt, threads=threads)
        comp = bytes(z.compress(bytearray(raw)))  # copy: ZipNN rotates its input in place
        work.append((name, dt, shape, zdt, size, raw, comp))
    best = [float("inf")] * len(work)
    for _ in range(repeats):
        for i, (name, dt, shape, zdt, size, raw, comp) in enumerate(work):
            d = zipnn.ZipNN(input_format="byte", bytearray_dtype=zdt, threads=threads)
            t0 = time.perf_counter()
            out = d.decompress(comp)
            t = time.perf_counter() - t0
            if bytes(out) != raw:
                raise SystemExit(f"{path}: {name}: ZipNN round trip mismatch")
            del out
            best[i] = min(best[i], t)
    for (name, dt, shape, zdt, size, raw, comp), t in zip(work, best):
        n = len(raw) // size
        rows.append({
            "name": name, "dtype": dt, "shape": shape, "elements": n,
            "raw_bytes": len(raw), "compressed_bytes": len(comp),
            "bits_per_weight": 8 * len(comp) / n,
            "decode_s": t, "decode_GBps": len(raw) / t / 1e9,
        })
    return rows, skipped


def summarize(rows):
    n = sum(r["elements"] for r in rows)
    raw = sum(r["raw_bytes"] for r in rows)
    comp = sum(r["compressed_bytes"] for r in rows)
    t = sum(r["decode_s"] for r in rows)
    return {
        "tensors": len(rows), "elements": n, "raw_bytes": raw, "compressed_bytes": comp,
        "bits_per_weight": 8 * comp / n if n else 0.0,
        "ratio": raw / comp if comp else 0.0,
        "decode_s": t, "decode_GBps": raw / t / 1e9 if t else 0.0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    ap.add_argument("--repeats", type=int, default=3, help="decode runs per tensor; the best counts")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-tensor-json", action="store_true", help="include the per-tensor rows in --json")
    ap.add_argument("--warm", action="store_true",
                    help="keep freed memory in the glibc heap (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_), "
                         "so ZipNN's output buffer is reused and the timing has no first-touch page faults, "
                         "as when decoding into a preallocated buffer. Default: fresh memory per decode.")
    a = ap.parse_args()
    if a.warm and WARM_ENV["MALLOC_MMAP_THRESHOLD_"] != os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        env = dict(os.environ, **WARM_ENV)  # glibc reads these at start-up: re-run this script with them
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    alloc = "warm" if all(os.environ.get(k) == v for k, v in WARM_ENV.items()) else "fresh"

    zipnn, zver, torch_kind = import_zipnn()
    result = {"tool": "zipnn", "zipnn_version": zver, "torch": torch_kind, "threads": a.threads,
              "repeats": a.repeats, "alloc": alloc, "cpu": cpu_model(), "python": platform.python_version(), "files": []}
    for path in a.files:
        rows, skipped = bench_file(path, a.repeats, a.threads, zipnn)
        by_dtype = {}
        for r in rows:
            by_dtype.setdefault(r["dtype"], []).append(r)
        entry = {"file": os.path.basename(path), "total": summarize(rows),
                 "by_dtype": {k: summarize(v) for k, v in by_dtype.items()},
                 "skipped_non_float": skipped}
        if a.per_tensor_json or not a.json:
            entry["per_tensor"] = rows
        result["files"].append(entry)
        if not a.json:
            print(f"# {path}  (zipnn {zver}, threads={a.threads}, best of {a.repeats}, {alloc} memory, torch {torch_kind})")
            print(f"{'tensor':60s} {'dtype':5s} {'elements':>10s} {'comp B':>10s} {'bits/w':>7s} {'GB/s':>6s}")
            for r in rows:
                print(f"{r['name'][:60]:60s} {r['dtype']:5s} {r['elements']:10d} {r['compressed_bytes']:10d} "
                      f"{r['bits_per_weight']:7.3f} {r['decode_GBps']:6.2f}")
            s = entry["total"]
            print(f"{'TOTAL':60s} {'':5s} {s['elements']:10d} {s['compressed_bytes']:10d} "
                  f"{s['bits_per_weight']:7.3f} {s['decode_GBps']:6.2f}")
            if skipped:
                print(f"(skipped non-float: {', '.join(x['name'] + ' ' + x['dtype'] for x in skipped)})")
            print()
    if a.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
