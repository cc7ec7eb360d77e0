#!/usr/bin/env python3
"""Convert the fetched real checkpoints into safetensors files for tileans.

Standard library plus numpy only (numpy only for the F32->BF16 conversion).

  convert_weights.py bf16 IN.safetensors OUT.safetensors
      Every F32 tensor becomes BF16 by round-to-nearest-even:
          bf16 = (u32 + 0x7FFF + ((u32 >> 16) & 1)) >> 16
      Other tensors (I64, ...) are copied unchanged. Tensor order is kept.

  convert_weights.py ct2 IN_model.bin OUT.safetensors
      Every variable of a CTranslate2 model.bin becomes a safetensors tensor of the
      same name and shape; float16 variables become F16 (bytes unchanged), other
      dtypes keep their bytes under the matching safetensors dtype. Order is kept.
      CT2 aliases are recorded in __metadata__["ct2.aliases"] (JSON).

  convert_weights.py info FILE.safetensors
      Print the tensors of a safetensors file.

Outputs are written to OUT.tmp and renamed, so a killed run leaves no half file.
"""
import json
import os
import struct
import sys

# CTranslate2 dtype code -> (safetensors dtype, element size)
CT2_DTYPES = {
    0: ("F32", 4),
    1: ("I8", 1),
    2: ("I16", 2),
    3: ("I32", 4),
    4: ("F16", 2),
    5: ("BF16", 2),
}

ST_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}


# ---------------------------------------------------------------- safetensors I/O

def read_safetensors(path):
    """Return (metadata dict or None, [(name, dtype, shape, memoryview)]) in data order."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: too short for safetensors")
    (n,) = struct.unpack_from("<Q", buf, 0)
    if 8 + n > len(buf):
        raise ValueError(f"{path}: header length {n} beyond file end")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    base = 8 + n
    mv = memoryview(buf)
    tensors = []
    for name, info in header.items():
        a, b = info["data_offsets"]
        dt, shape = info["dtype"], info["shape"]
        count = 1
        for d in shape:
            count *= d
        if dt not in ST_SIZES or b - a != count * ST_SIZES[dt] or base + b > len(buf):
            raise ValueError(f"{path}: bad entry {name}: {info}")
        tensors.append((name, dt, list(shape), mv[base + a:base + b]))
    # "source order" = order of the data in the file
    order = {name: header[name]["data_offsets"][0] for name in header}
    tensors.sort(key=lambda t: order[t[0]])
    return meta, tensors


def write_safetensors(path, tensors, metadata=None):
    """tensors: iterable of (name, dtype, shape, bytes-like), written in the given order.

    The JSON header is padded with spaces so the data starts on an 8-byte boundary.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    off = 0
    for name, dt, shape, data in tensors:
        nbytes = memoryview(data).nbytes
        count = 1
        for d in shape:
            count *= d
        if nbytes != count * ST_SIZES[dt]:
            raise ValueError(f"{name}: {nbytes} bytes for {dt}{shape}")
        if name in header:
            raise ValueError(f"duplicate tensor name {name}")
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-(8 + len(hj))) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for _, _, _, data in tensors:
            f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- conversions

def f32_to_bf16_rne(raw):
    """F32 little-endian bytes -> BF16 bytes, round to nearest even."""
    import numpy as np  # only the conversion needs numpy; the readers/writers are stdlib only

    u = np.frombuffer(raw, dtype="<u4").astype(np.uint64)
    nan = int(np.count_nonzero((u & 0x7F800000) == 0x7F800000))
    if nan:
        print(f"warning: {nan} Inf/NaN values; converted by the plain formula", file=sys.stderr)
    b = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return (b & 0xFFFF).astype("<u2").tobytes()


def convert_bf16(src, dst):
    meta, tensors = read_safetensors(src)
    out = []
    n_conv = 0
    for name, dt, shape, data in tensors:
        if dt == "F32":
            out.append((name, "BF16", shape, f32_to_bf16_rne(data)))
            n_conv += 1
        else:
            out.append((name, dt, shape, data))
    meta = dict(meta or {})
    meta["tileans.source"] = os.path.basename(src)
    meta["tileans.conversion"] = "F32->BF16 round-to-nearest-even: (u32 + 0x7FFF + ((u32>>16)&1)) >> 16"
    write_safetensors(dst, out, meta)
    print(f"{dst}: {n_conv} F32 tensors -> BF16, {len(out) - n_conv} kept", file=sys.stderr)


def read_ct2(path):
    """Parse a CTranslate2 model.bin (version >= 5). Returns (spec, revision, vars, aliases)."""
    with open(path, "rb") as f:
        buf = f.read()
    mv = memoryview(buf)
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("<H")
        s = bytes(mv[pos:pos + n])
        pos += n
        if not s.endswith(b"\0"):
            raise ValueError(f"{path}: unterminated string at {pos}")
        return s[:-1].decode("utf-8")

    (version,) = take("<I")
    if version < 5:
        raise ValueError(f"{path}: CTranslate2 model version {version} not supported")
    spec = string()
    (revision,) = take("<I")
    (n_vars,) = take("<I")
    variables = []
    for _ in range(n_vars):
        name = string()
        (rank,) = take("<B")
        shape = list(take(f"<{rank}I")) if rank else []
        (code,) = take("<B")
        (nbytes,) = take("<I")
        if code not in CT2_DTYPES:
            raise ValueError(f"{path}: {name}: unknown dtype code {code}")
        dt, size = CT2_DTYPES[code]
        count = 1
        for d in shape:
            count *= d
        if nbytes != count * size or pos + nbytes > len(buf):
            raise ValueError(f"{path}: {name}: {nbytes} bytes for {dt}{shape}")
        variables.append((name, dt, shape, mv[pos:pos + nbytes]))
        pos += nbytes
    aliases = []
    if pos < len(buf):
        (n_alias,) = take("<I")
        for _ in range(n_alias):
            alias = string()
            target = string()
            aliases.append((alias, target))
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} trailing bytes")
    return spec, revision, version, variables, aliases


def convert_ct2(src, dst):
    spec, revision, version, variables, aliases = read_ct2(src)
    meta = {
        "tileans.source": os.path.basename(src),
        "tileans.conversion": "CTranslate2 model.bin -> safetensors; bytes unchanged (float16 -> F16)",
        "ct2.spec": spec,
        "ct2.revision": str(revision),
        "ct2.version": str(version),
        "ct2.aliases": json.dumps(dict(aliases)),
    }
    write_safetensors(dst, variables, meta)
    counts = {}
    for _, dt, _, _ in variables:
        counts[dt] = counts.get(dt, 0) + 1
    print(f"{dst}: {spec} rev {revision}, {len(variables)} variables {counts}, {len(aliases)} aliases",
          file=sys.stderr)


def info(path):
    meta, tensors = read_safetensors(path)
    if meta:
        print("__metadata__", json.dumps(meta))
    total = 0
    for name, dt, shape, data in tensors:
        n = data.nbytes // ST_SIZES[dt]
        total += n
        print(f"{name}\t{dt}\t{shape}\t{n}")
    print(f"{len(tensors)} tensors, {total} elements")


def main(argv):
    if len(argv) == 4 and argv[1] == "bf16":
        convert_bf16(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "ct2":
        convert_ct2(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "info":
        info(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
