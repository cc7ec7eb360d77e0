#!/usr/bin/env bash
# Regenerate include/tileans.h from the tileans-ffi crate with the pinned cbindgen.
#
#   scripts/gen-header.sh          write include/tileans.h
#   scripts/gen-header.sh --check  exit 1 (with a diff) if include/tileans.h is stale; used by CI
#
# cbindgen is pinned because point releases can change the output without changing its meaning.
# When `cbindgen` on PATH is not the pinned version, the pinned one is installed under
# target/tools/ (set CBINDGEN=/path/to/cbindgen to use another binary of the pinned version).
set -euo pipefail

CBINDGEN_VERSION=0.29.4 # keep in step with the comment in ffi/cbindgen.toml

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
header="$root/include/tileans.h"

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

version_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }

cbindgen=${CBINDGEN:-}
if [ -z "$cbindgen" ]; then
    if command -v cbindgen >/dev/null && [ "$(version_of cbindgen)" = "$CBINDGEN_VERSION" ]; then
        cbindgen=$(command -v cbindgen)
    else
        tools="$root/target/tools/cbindgen-$CBINDGEN_VERSION"
        cbindgen="$tools/bin/cbindgen"
        if [ ! -x "$cbindgen" ]; then
            echo "installing cbindgen $CBINDGEN_VERSION into $tools" >&2
            cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$tools" >&2
        fi
    fi
fi
if [ "$(version_of "$cbindgen")" != "$CBINDGEN_VERSION" ]; then
    echo "error: $cbindgen is not cbindgen $CBINDGEN_VERSION" >&2
    exit 2
fi

generated=$(mktemp)
trap 'rm -f "$generated"' EXIT
(cd "$root" && "$cbindgen" --quiet --config ffi/cbindgen.toml --crate tileans-ffi --output "$generated" ffi)

if [ "$check" = 1 ]; then
    if ! diff -u "$header" "$generated" >&2; then
        echo "error: include/tileans.h is stale; run scripts/gen-header.sh and commit the result" >&2
        exit 1
    fi
    echo "include/tileans.h is up to date"
else
    mkdir -p "$(dirname "$header")"
    cp "$generated" "$header"
    echo "wrote include/tileans.h"
fi
