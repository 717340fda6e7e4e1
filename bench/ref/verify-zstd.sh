#!/usr/bin/env bash
# The floor for verify-deep: `zstd -t` alone (decompress and check, one core), file by file.
# Usage: verify-zstd.sh DUMP_DIR
set -euo pipefail
for f in "$1"/*.zst; do
  zstd -q -t "$f"
done
