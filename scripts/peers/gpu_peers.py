#!/usr/bin/env python3
"""gpu_peers.py: nvCOMP ANS and DFloat11 decode, timed on the same card and the same BF16 weights as
our bulk-decode benchmark (scripts/gpu-peers.sh runs both in one device call).

Data: RAW (default $CARRY/raw.bin) = the 16 Mi BF16 elements of the benchmark frame (first 16 Mi
elements of all-MiniLM-L6-v2, every BF16 tensor concatenated; `gpu_suite bench-prep` decodes them
from bench_64x512.tan). Replicated COPIES times (default 4: 64 Mi elements, 128 MiB of BF16 output,
more than the L2) exactly like `gpu_check bench` decodes 4 copies of the frame per launch.

Peers, each decoding the whole 64 Mi-element tensor per call, output checked bit-exact:
  * nvCOMP ANS (PyPI nvidia-nvcomp-cu13 + nvidia-libnvcomp-cu13), Python API
    `nvcomp.Codec(algorithm="ANS", data_type="<f2")` with default options (64 KiB chunks,
    ExecutionPolicy.CONCURRENCY), and the same with ExecutionPolicy.LATENCY. The decode gets a
    preallocated output and a DecompressConfig (no stream synchronisation inside the call), on
    our stream, timed with CUDA events.
  * DFloat11 (PyPI dfloat11 0.5.0): its codec construction (`get_codec`, `get_32bit_codec`,
    `get_luts` from dfloat11_utils.py) and its `decode` kernel from its decode.ptx, launched as
    its own `get_hook` launches it (512 threads, 8 bytes per thread, same shared-memory size). Its
    encoder `encode()` is a per-symbol Python loop (minutes for 64 Mi symbols); `df11_encode_fast`
    below produces the same bytes with numpy and is checked byte-for-byte against `encode()` on a
    prefix in every run (and bit-exact decode of the full tensor on the GPU).
  * The device-to-device copy of the same 128 MiB (read + write), in this process.
Our decoder: `gpu_check bench` runs in the same call just before (scripts/gpu-peers.sh); its log is
parsed (--ours-log) so that one table holds everything.

Timing: median of REPS (default 30) calls after 3 warm-ups, each bracketed by CUDA events on one
non-blocking stream; also REPS calls back-to-back between two events. GB/s = BF16 output bytes /
time (1e9). bits/weight = every byte the decoder needs (payload + indexes + tables) * 8 / elements.
Then the GPU's own time, without the host's share of a call (nvCOMP's Python decode costs ~0.13 ms
of host time per call, more than its kernels take): CUPTI activity records through torch.profiler
(union of the kernel/memcpy intervals per call, and each kernel's time), and CUDA-graph replay
(copy and DFloat11; nvCOMP's decode reads a status back to the host in every call and is not
captured). The table is written before these, in case one takes the process down.

  --selftest [N]   no GPU needed: check df11_encode_fast against dfloat11's encode() on N elements
"""
import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import sys
import time

import numpy as np

BPT = 8  # dfloat11.dfloat11.bytes_per_thread
TPB = 512  # dfloat11.dfloat11.threads_per_block[0]


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------------------------------------
# DFloat11
# ------------------------------------------------------------------------------------------------
def df11_dir():
    spec = importlib.util.find_spec("dfloat11")  # does not run dfloat11/__init__.py (which needs
    if spec is None or not spec.submodule_search_locations:  # accelerate, transformers, pkg_resources)
        raise RuntimeError("dfloat11 not installed")
    return list(spec.submodule_search_locations)[0]


def df11_utils():
    """dfloat11/dfloat11_utils.py loaded by path (its imports: torch, numpy, dahuffman, tqdm)."""
    spec = importlib.util.spec_from_file_location("dfloat11_utils_peer", os.path.join(df11_dir(), "dfloat11_utils.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def df11_codec(u16, utils):
    """dfloat11's own codec construction, as compress_model does it: get_codec -> get_32bit_codec
    -> get_luts. u16: the BF16 bit patterns (numpy uint16). Without a real torch (the development
    machine) get_codec's counter is rebuilt with numpy (torch.unique's order = sorted, the same)."""
    try:
        import torch

        w = torch.from_numpy(u16.view(np.int16)).view(torch.bfloat16)
        with contextlib.redirect_stdout(io.StringIO()):
            _codec, counter = utils.get_codec(w)
        how = "dfloat11 get_codec (torch)"
    except (ImportError, AttributeError):
        v, f = np.unique((u16.view(np.int16) >> 7) & 0xFF, return_counts=True)
        counter = {int(a): int(b) for a, b in zip(v, f)}
        how = "numpy counter (no torch)"
    with contextlib.redirect_stdout(io.StringIO()):  # get_luts prints every LUT dict
        codec, _, table = utils.get_32bit_codec(counter)
        luts = utils.get_luts(table)
    luts = luts.numpy() if hasattr(luts, "numpy") else np.asarray(luts)
    return codec, luts.astype(np.uint8), how


def df11_split(u16):
    """exponent byte and sign|mantissa byte, as dfloat11_utils.encode_weights computes them."""
    exp = ((u16 >> 7) & 0xFF).astype(np.uint8)
    other = (((u16 >> 8) & 0x80) | (u16 & 0x7F)).astype(np.uint8)
    return exp, other


def df11_encode_fast(sym, codec, bytes_per_thread=BPT, threads_per_block=TPB, chunk=1 << 22):
    """Byte-for-byte the output of dfloat11_utils.encode(sym.tolist(), codec, bpt, tpb), vectorised:
    (encoded exponent bytes, packed 5-bit gaps, output_positions uint32)."""
    sym = np.asarray(sym, dtype=np.uint8)
    n = sym.size
    lens = np.zeros(256, np.int64)
    vals = np.zeros(256, np.uint64)
    for s, (b, v) in codec._table.items():
        if isinstance(s, (int, np.integer)):
            lens[s] = b
            vals[s] = v
    L = lens[sym]
    if n and L.min() == 0:
        raise ValueError("symbol without a code")
    C = 8 * bytes_per_thread
    B = C * threads_per_block
    if lens.max() > C:
        raise ValueError("code longer than a thread's chunk")
    ends = np.cumsum(L)
    total = int(ends[-1]) if n else 0
    starts = ends - L
    del ends
    # gaps: bit offset, inside each thread's chunk, of the first symbol that starts in it
    ck = starts // C
    first = np.flatnonzero(np.diff(ck, prepend=-1))
    if not np.array_equal(ck[first], np.arange(first.size)):
        raise ValueError("a chunk without a symbol start")
    gaps = list((starts[first] - ck[first] * C).astype(np.int64))
    del ck
    bk = starts // B
    firstb = np.flatnonzero(np.diff(bk, prepend=-1))
    if not np.array_equal(bk[firstb], np.arange(firstb.size)):
        raise ValueError("a block without a symbol start")
    outpos = list(firstb.astype(np.int64))
    del bk
    # the bit stream, MSB first
    bits = np.zeros(total + 64, np.uint8)
    maxl = int(lens.max())
    for a in range(0, n, chunk):
        Lc = L[a : a + chunk]
        Sc = starts[a : a + chunk]
        Vc = vals[sym[a : a + chunk]]
        for t in range(maxl):
            m = np.flatnonzero(Lc > t)
            if m.size == 0:
                break
            sh = (Lc[m] - 1 - t).astype(np.uint64)
            bits[Sc[m] + t] = ((Vc[m] >> sh) & np.uint64(1)).astype(np.uint8)
    nfull = total // 8
    encoded = np.packbits(bits[: nfull * 8]) if nfull else np.zeros(0, np.uint8)
    size = total % 8
    tail = []
    if size > 0:
        if total // C + 1 > len(gaps):
            gaps.append(total - total // C * C)
        if total // B + 1 > len(outpos):
            outpos.append(n)
        rest = 0
        for j in range(size):
            rest = (rest << 1) | int(bits[nfull * 8 + j])
        b, v = codec._table[codec._eof]
        buf = (rest << b) + v
        size += b
        byte = buf >> (size - 8) if size >= 8 else buf << (8 - size)
        tail.append(byte)
    if tail:
        encoded = np.concatenate([encoded, np.array(tail, np.uint8)])
    outpos.append(n)
    blocks = int(np.ceil(len(encoded) / (threads_per_block * bytes_per_thread)))
    gaps = np.array(gaps + [0] * (threads_per_block * blocks - len(gaps)), np.int64)
    if gaps.size and gaps.max() >= 32:
        raise ValueError("gap does not fit 5 bits")
    gbits = ((gaps[:, None] >> np.arange(4, -1, -1)) & 1).astype(np.uint8).ravel()
    return encoded.astype(np.uint8), np.packbits(gbits), np.array(outpos, dtype=np.uint32)


def df11_encode_ref(sym, codec, utils, bytes_per_thread=BPT, threads_per_block=TPB):
    with contextlib.redirect_stderr(io.StringIO()):  # tqdm
        return utils.encode(np.asarray(sym).tolist(), codec, bytes_per_thread, threads_per_block)


def df11_check_fast(sym, codec, utils, n):
    """df11_encode_fast == dfloat11's encode() on the first n symbols (and on a few odd lengths)."""
    res = []
    for m in sorted({n, max(1, n - 3), 4097, 33, 1}):
        if m > sym.size:
            continue
        a = df11_encode_fast(sym[:m], codec)
        r = df11_encode_ref(sym[:m], codec, utils)
        ok = all(np.array_equal(np.asarray(x, dtype=np.asarray(y).dtype), np.asarray(y)) and np.asarray(x).size == np.asarray(y).size for x, y in zip(a, r))
        res.append((m, ok))
    return res


def import_nvcomp():
    """nvidia.nvcomp from the carried site; where the image's own `nvidia` package (a regular one,
    with __init__.py) shadows the namespace portion of the carried wheels, extend its __path__."""
    try:
        from nvidia import nvcomp

        return nvcomp
    except ImportError as first:
        import nvidia

        added = False
        for p in sys.path:
            d = os.path.join(p or ".", "nvidia")
            if os.path.isdir(os.path.join(d, "nvcomp")) and d not in list(nvidia.__path__):
                nvidia.__path__.append(d)
                added = True
        if not added:
            raise first
        from nvidia import nvcomp

        return nvcomp


# ------------------------------------------------------------------------------------------------
# timing helpers (cupy)
# ------------------------------------------------------------------------------------------------
def time_events(cp, stream, fn, reps, warm=3):
    for _ in range(warm):
        fn()
    stream.synchronize()
    ts = []
    for _ in range(reps):
        a = cp.cuda.Event()
        b = cp.cuda.Event()
        a.record(stream)
        fn()
        b.record(stream)
        b.synchronize()
        ts.append(cp.cuda.get_elapsed_time(a, b))
    ts.sort()
    return ts[len(ts) // 2], ts[0], ts[-1]


def time_back_to_back(cp, stream, fn, reps):
    a = cp.cuda.Event()
    b = cp.cuda.Event()
    stream.synchronize()
    a.record(stream)
    for _ in range(reps):
        fn()
    b.record(stream)
    b.synchronize()
    return cp.cuda.get_elapsed_time(a, b) / reps


def parse_ours(path):
    """gpu_check bench log: copy line and the rows of the table."""
    if not path or not os.path.exists(path):
        return None
    txt = open(path).read()
    out = {"rows": {}, "device": None, "copy_gbs": None}
    m = re.search(r"^device: (.*)$", txt, re.M)
    if m:
        out["device"] = m.group(1)
    m = re.search(r"copy D2D (\d+) MiB: ([\d.]+) ms = (\d+) GB/s", txt)
    if m:
        out["copy_mib"], out["copy_ms"], out["copy_gbs"] = int(m.group(1)), float(m.group(2)), float(m.group(3))
    hdr = txt.find("geometry ")
    for line in txt[hdr:].splitlines()[1:] if hdr >= 0 else []:
        f = line.split()
        if len(f) >= 14 and re.match(r"^\d+x\d+", f[0]):
            out["rows"][f[0]] = {"bits": float(f[1]), "tiles": int(f[2]), "bulk_ms": float(f[4]), "bulk_gbs": float(f[5]),
                                 "one_ms": float(f[6]), "one_gbs": float(f[7]), "exact": f[-1]}
    out["passed"] = re.search(r"gpu_check bench: (\d+) passed, (\d+) failed", txt)
    out["passed"] = out["passed"].group(0) if out["passed"] else None
    return out


# ------------------------------------------------------------------------------------------------
def run_gpu(args):
    import cupy as cp

    res = {"rows": [], "notes": []}
    fns = {}  # name -> (callable, fixed output buffer or None): the GPU-only measurements at the end
    raw = np.fromfile(args.raw, dtype=np.uint16)
    sha = hashlib.sha256(raw.tobytes()).hexdigest()
    log(f"raw: {args.raw}, {raw.size} BF16 elements, sha256 {sha}")
    if args.sha and sha != args.sha:
        log(f"WARNING: sha256 differs from the expected {args.sha}")
    host = np.tile(raw, args.copies)
    n = host.size
    nbytes = n * 2
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    res["device"] = name
    res["elements"] = n
    log(f"device: {name}, {props['multiProcessorCount']} SMs, L2 {props['l2CacheSize'] >> 20} MiB; "
        f"data: {args.copies} x {raw.size} = {n} elements ({nbytes >> 20} MiB BF16)")
    stream = cp.cuda.Stream(non_blocking=True)
    x = cp.asarray(host)  # uint16 bit patterns on the device
    cp.cuda.Device().synchronize()

    def row(name, bits, med, lo, hi, b2b=None, exact=None, extra=""):
        r = {"name": name, "bits": bits, "ms": med, "gbs": nbytes / med / 1e6, "min_ms": lo, "max_ms": hi,
             "b2b_gbs": (nbytes / b2b / 1e6) if b2b else None, "exact": exact, "extra": extra}
        res["rows"].append(r)
        log(f"{name}: {bits if bits is None else round(bits, 4)} bits/weight, median {med:.4f} ms "
            f"(min {lo:.4f}, max {hi:.4f}) = {r['gbs']:.0f} GB/s BF16 out"
            + (f"; back-to-back {r['b2b_gbs']:.0f} GB/s" if b2b else "") + f"; bit-exact: {exact} {extra}")

    # ---- copy bound ----------------------------------------------------------------------------
    y = cp.empty_like(x)

    def copy():
        cp.cuda.runtime.memcpyAsync(y.data.ptr, x.data.ptr, nbytes, cp.cuda.runtime.memcpyDeviceToDevice, stream.ptr)

    med, lo, hi = time_events(cp, stream, copy, args.reps)
    fns["copy"] = (copy, None)
    res["copy"] = {"ms": med, "gbs_rw": 2 * nbytes / med / 1e6}
    log(f"copy D2D {nbytes >> 20} MiB: median {med:.4f} ms = {2 * nbytes / med / 1e6:.0f} GB/s read+write")

    # ---- nvCOMP ANS ----------------------------------------------------------------------------
    try:
        nvcomp = import_nvcomp()
        res["nvcomp_version"] = nvcomp.__version__
        log(f"nvcomp {nvcomp.__version__} (CUDA {nvcomp.__cuda_version__})")
        xf = x.view(cp.float16)
        keep = []
        variants = [("nvCOMP ANS (default: 64 KiB chunks, CONCURRENCY)", {})]
        if hasattr(nvcomp, "ExecutionPolicy"):
            variants.append(("nvCOMP ANS (ExecutionPolicy.LATENCY)", {"execution_policy": nvcomp.ExecutionPolicy.LATENCY}))
        for label, kw in variants:
            try:
                codec = nvcomp.Codec(algorithm="ANS", data_type="<f2", cuda_stream=stream.ptr, **kw)
                arr = nvcomp.as_array(xf, cuda_stream=stream.ptr)
                comp = codec.encode(arr)
                stream.synchronize()
                csize = comp.buffer_size
                bits = csize * 8 / n
                out = cp.empty(n, dtype=cp.float16)
                how = "decompression_config + out=cupy"
                try:
                    dcfg = codec.decompression_config(comp)
                except Exception as e:  # older API
                    dcfg = None
                    how = f"no decompression_config ({e})"

                def dec(out=out, dcfg=dcfg, codec=codec, comp=comp):
                    if dcfg is not None:
                        return codec.decode(comp, data_type="<f2", out=out, decompression_config=dcfg)
                    return codec.decode(comp, data_type="<f2", out=out)

                try:
                    r = dec()
                except Exception as e:
                    how = f"out=None ({type(e).__name__}: {e})"
                    log(f"  {label}: decode with out= failed ({e}); decoding into nvCOMP's own buffer")

                    def dec(dcfg=dcfg, codec=codec, comp=comp):
                        return codec.decode(comp, data_type="<f2", decompression_config=dcfg) if dcfg is not None \
                            else codec.decode(comp, data_type="<f2")

                    r = dec()
                stream.synchronize()
                got = cp.asarray(r).view(cp.uint16).ravel() if r is not None else out.view(cp.uint16)
                exact = bool(got.size == n and cp.array_equal(got, x))
                med, lo, hi = time_events(cp, stream, dec, args.reps)
                t0 = time.perf_counter()
                b2b = time_back_to_back(cp, stream, dec, args.reps)
                host_ms = (time.perf_counter() - t0) * 1e3 / args.reps
                # exactness after the timed runs too
                r = dec()
                stream.synchronize()
                got = cp.asarray(r).view(cp.uint16).ravel() if r is not None else out.view(cp.uint16)
                exact = exact and bool(cp.array_equal(got, x))
                row(label, bits, med, lo, hi, b2b, exact,
                    f"[{csize} bytes; {how}; host {host_ms:.3f} ms/call back-to-back]")
                fns[label] = (dec, out if how.startswith("decompression_config") else None)
                keep.append((comp, codec, arr, out))
            except Exception as e:
                log(f"{label}: FAILED {type(e).__name__}: {e}")
                res["notes"].append(f"{label}: {type(e).__name__}: {e}")
    except Exception as e:
        log(f"nvCOMP: FAILED {type(e).__name__}: {e}")
        res["notes"].append(f"nvCOMP: {type(e).__name__}: {e}")

    # ---- DFloat11 ------------------------------------------------------------------------------
    try:
        utils = df11_utils()
        t0 = time.perf_counter()
        codec, luts, how = df11_codec(host, utils)
        exp, other = df11_split(host)
        chk = df11_check_fast(exp, codec, utils, args.check_n)
        log(f"dfloat11: codec ({how}) built in {time.perf_counter() - t0:.1f} s ({len(codec._table) - 1} exponent symbols, "
            f"max code {max(b for s, (b, v) in codec._table.items())} bits, {luts.shape[0]} LUT rows); "
            f"fast encoder == dfloat11 encode() on prefixes: {chk}")
        if not all(ok for _, ok in chk):
            raise RuntimeError("fast encoder differs from dfloat11's encode()")
        t0 = time.perf_counter()
        enc, gaps, outpos = df11_encode_fast(exp, codec)
        log(f"dfloat11: encoded {n} exponents in {time.perf_counter() - t0:.1f} s: {enc.size} bytes, "
            f"{gaps.size} gap bytes, {outpos.size} output positions")
        total_bytes = enc.size + other.size + outpos.size * 4 + gaps.size + luts.size
        bits = total_bytes * 8 / n
        ptx = os.path.join(df11_dir(), "decode.ptx")
        kern = cp.RawModule(path=ptx).get_function("decode")
        d_luts, d_enc, d_other, d_pos, d_gaps = (cp.asarray(a) for a in (luts, enc, other, outpos, gaps))
        d_out = cp.empty(n, dtype=cp.uint16)
        blocks = int(math.ceil(enc.size / (TPB * BPT)))
        smem = TPB * 4 + 4 + int((outpos[1:].astype(np.int64) - outpos[:-1]).max()) * 2
        if smem > 48 * 1024:
            kern.max_dynamic_shared_size_bytes = smem
        kargs = (d_luts.data.ptr, d_enc.data.ptr, d_other.data.ptr, d_pos.data.ptr, d_gaps.data.ptr, d_out.data.ptr,
                 np.uint32(luts.shape[0]), np.uint32(enc.size), np.uint32(n))

        def dec():
            with stream:
                kern((blocks,), (TPB,), kargs, shared_mem=smem)

        d_out.fill(0)
        dec()
        stream.synchronize()
        exact = bool(cp.array_equal(d_out, x))
        med, lo, hi = time_events(cp, stream, dec, args.reps)
        b2b = time_back_to_back(cp, stream, dec, args.reps)
        exact = exact and bool(cp.array_equal(d_out, x))
        fns["DFloat11 decode kernel (decode.ptx, 512 threads x 8 B)"] = (dec, d_out)
        row("DFloat11 decode kernel (decode.ptx, 512 threads x 8 B)", bits, med, lo, hi, b2b, exact,
            f"[{total_bytes} bytes: exponent {enc.size}, sign+mantissa {other.size}, positions {outpos.size * 4}, "
            f"gaps {gaps.size}, luts {luts.size}; grid {blocks}, smem {smem} B]")
    except Exception as e:
        import traceback

        traceback.print_exc()
        log(f"DFloat11: FAILED {type(e).__name__}: {e}")
        res["notes"].append(f"DFloat11: {type(e).__name__}: {e}")

    return res, (cp, stream, fns, x)


def _union_us(iv):
    tot, end = 0.0, -1e300
    for a, b in sorted(iv):
        if b > end:
            tot += b - max(a, end)
            end = b
    return tot


def gpu_only(cp, stream, fns, x, res, args):
    """Time on the GPU alone, without the host's share of each call:
    (1) CUPTI activity records through torch.profiler (every kernel, memcpy and memset of this
        process, whichever library launched it): busy time = union of their intervals per call;
    (2) the call captured once into a CUDA graph and the graph replayed, timed with CUDA events
        (median of REPS), output re-checked bit-exact after the replays."""
    n = x.size
    nbytes = n * 2
    res["gpu_only"] = {}
    # (1) CUPTI
    try:
        import tempfile

        from torch.profiler import ProfilerActivity, profile

        reps = 10
        for name, (fn, _) in fns.items():
            fn()
            stream.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(reps):
                    fn()
                stream.synchronize()
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
                path = f.name
            prof.export_chrome_trace(path)
            ev = json.load(open(path)).get("traceEvents", [])
            os.unlink(path)
            ks = [e for e in ev if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
            if not ks:
                log(f"cupti {name}: no device activity recorded")
                continue
            busy = _union_us([(float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in ks]) / reps
            span = (max(float(e["ts"]) + float(e["dur"]) for e in ks) - min(float(e["ts"]) for e in ks)) / reps
            kinds, durs = {}, {}
            for e in ks:
                k = e["name"][:70]
                kinds[k] = kinds.get(k, 0) + 1
                durs[k] = durs.get(k, 0.0) + float(e["dur"])
            d = {"busy_us": busy, "span_us": span, "per_call": {k: v / reps for k, v in kinds.items()},
                 "us_per_call": {k: v / reps for k, v in durs.items()}, "busy_gbs": nbytes / busy / 1e3}
            res["gpu_only"].setdefault(name, {}).update(d)
            log(f"cupti {name}: busy {busy:.1f} us/call = {nbytes / busy / 1e3:.0f} GB/s BF16 out "
                f"(span {span:.1f} us/call); per call: "
                + ", ".join(f"{v / reps:g} x {k} ({durs[k] / reps:.1f} us)" for k, v in kinds.items()))
    except Exception as e:
        log(f"cupti: FAILED {type(e).__name__}: {e}")
        res["notes"].append(f"CUPTI kernel times: {type(e).__name__}: {e}")
    # (2) CUDA graph replay. Not for nvCOMP: its Python decode copies a status word to pinned host
    # memory in every call (CUPTI: Memcpy DtoH), and trying to capture it ended the whole process
    # without a Python error (second device call, H200, 2026-11-27).
    for name, (fn, outbuf) in fns.items():
        if name.startswith("nvCOMP"):
            res["gpu_only"].setdefault(name, {})["graph_error"] = "not captured (synchronous status read-back)"
            continue
        try:
            stream.synchronize()
            stream.begin_capture()
            try:
                fn()
            finally:
                g = stream.end_capture()
            if outbuf is not None:
                outbuf.fill(0)
                cp.cuda.Device().synchronize()
            g.launch(stream)
            stream.synchronize()
            exact = None if outbuf is None else bool(cp.array_equal(outbuf.view(cp.uint16), x))
            med, lo, hi = time_events(cp, stream, lambda: g.launch(stream), args.reps)
            if outbuf is not None:
                exact = exact and bool(cp.array_equal(outbuf.view(cp.uint16), x))
            d = {"graph_ms": med, "graph_gbs": nbytes / med / 1e6, "graph_exact": exact}
            res["gpu_only"].setdefault(name, {}).update(d)
            log(f"graph {name}: median {med:.4f} ms (min {lo:.4f}, max {hi:.4f}) = {nbytes / med / 1e6:.0f} GB/s "
                f"BF16 out; bit-exact after replay: {exact}")
        except Exception as e:
            log(f"graph {name}: capture or replay FAILED {type(e).__name__}: {e}")
            res["gpu_only"].setdefault(name, {})["graph_error"] = f"{type(e).__name__}: {e}"


def table(res, ours):
    n = res["elements"]
    copy = res["copy"]["gbs_rw"]
    lines = [f"Card: **{res['device']}**; {n} BF16 elements ({n * 2 >> 20} MiB out) per decode call; "
             f"median of {ARGS.reps} calls, CUDA events.", "",
             "| decoder | bits/weight | median ms | GB/s BF16 out | back-to-back GB/s | GPU busy (CUPTI) GB/s | CUDA-graph replay GB/s | % of copy bound at its bits | bit-exact |",
             "|---|---|---|---|---|---|---|---|---|"]
    go = res.get("gpu_only", {})

    def gcols(name):
        d = go.get(name, {})
        a = f"{d['busy_gbs']:.0f}" if "busy_gbs" in d else ""
        b = f"{d['graph_gbs']:.0f}" if "graph_gbs" in d else \
            ("not captured" if d.get("graph_error", "").startswith("not") else ("failed" if "graph_error" in d else ""))
        return f"{a} | {b}"

    if ours and ours["rows"]:
        for g, r in ours["rows"].items():
            bound = copy / (1 + r["bits"] / 16)
            what = (f"**tileans device image** ({g[:-4]} tiles, `gpu_check bench`, 4 images per batched launch)"
                    if g.endswith(".tai") else f"**tileans bulk decode** ({g}, `gpu_check bench`, 4 frames per launch)")
            lines.append(f"| {what} | {r['bits']:.3f} | "
                         f"{r['bulk_ms']:.3f} | **{r['bulk_gbs']:.0f}** | | | | {100 * r['bulk_gbs'] / bound:.0f}% | {r['exact']} |")
    for r in res["rows"]:
        bound = copy / (1 + r["bits"] / 16)
        lines.append(f"| {r['name']} | {r['bits']:.3f} | {r['ms']:.4f} | **{r['gbs']:.0f}** | "
                     f"{r['b2b_gbs']:.0f} | {gcols(r['name'])} | {100 * r['gbs'] / bound:.0f}% | {'yes' if r['exact'] else 'NO'} |")
    lines.append(f"| device-to-device copy of the {n * 2 >> 20} MiB (cupy, this process) | 16 | {res['copy']['ms']:.4f} | "
                 f"{n * 2 / res['copy']['ms'] / 1e6:.0f} (= {copy:.0f} read+write) | | {gcols('copy')} | | |")
    if ours and ours.get("copy_gbs"):
        lines.append(f"| device-to-device copy, `gpu_check bench` ({ours['copy_mib']} MiB) | 16 | {ours['copy_ms']:.4f} | "
                     f"{ours['copy_gbs'] / 2:.0f} (= {ours['copy_gbs']:.0f} read+write) | | | | | |")
    return "\n".join(lines)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--raw", default=".peers-carry/raw.bin")
    p.add_argument("--sha", default="")
    p.add_argument("--copies", type=int, default=4)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--check-n", type=int, default=1 << 18, help="prefix checked against dfloat11's encode()")
    p.add_argument("--ours-log", default="")
    p.add_argument("--out", default="")
    p.add_argument("--no-gpu-only", action="store_true", help="skip the CUPTI and CUDA-graph timings")
    p.add_argument("--selftest", type=int, nargs="?", const=1 << 20, default=0)
    ARGS = args = p.parse_args()
    if args.selftest:
        raw = np.fromfile(args.raw, dtype=np.uint16)
        host = np.tile(raw, args.copies)
        try:
            import torch  # noqa: F401
        except ImportError:  # a stand-in, enough to load dfloat11_utils (encode() is pure Python)
            import types

            sys.modules["torch"] = types.SimpleNamespace(from_numpy=np.asarray)
        utils = df11_utils()
        codec, luts, how = df11_codec(host, utils)
        log(f"codec: {how}, {len(codec._table) - 1} symbols, {luts.shape[0]} LUT rows")
        exp, other = df11_split(host)
        t0 = time.perf_counter()
        log("fast == dfloat11 encode():", df11_check_fast(exp, codec, utils, args.selftest),
            f"({time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        enc, gaps, outpos = df11_encode_fast(exp, codec)
        total = enc.size + other.size + outpos.size * 4 + gaps.size
        log(f"full {exp.size} symbols: {enc.size} exponent bytes, {gaps.size} gap bytes, {outpos.size} positions, "
            f"{total * 8 / exp.size:.4f} bits/weight (without LUTs), {time.perf_counter() - t0:.1f} s; "
            f"max block elements {int(np.diff(outpos.astype(np.int64)).max())}")
        if ours := parse_ours(args.ours_log):
            log(json.dumps(ours, default=str))
        return 0
    res, ctx = run_gpu(args)
    ours = parse_ours(args.ours_log)
    res["ours"] = ours
    emit(res, ours, args)  # written before the GPU-only timings, in case they take the process down
    if not args.no_gpu_only:
        gpu_only(*ctx, res, args)
        emit(res, ours, args)
    return 0


def emit(res, ours, args):
    t = table(res, ours)
    log("\n" + t)
    for s in res["notes"]:
        log("note: " + s)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "peers.json"), "w") as f:
            json.dump(res, f, indent=1, default=str)
        with open(os.path.join(args.out, "peers-table.md"), "w") as f:
            f.write(t + "\n")


if __name__ == "__main__":
    sys.exit(main())
