#!/usr/bin/env bash
# Reference for verify-deep: the old verify-backups.sh deep check, file by file: `zstd -t`, then
# `sha256sum`. Usage: verify-pair.sh DUMP_DIR
set -euo pipefail
for f in "$1"/*.zst; do
  zstd -q -t "$f"
  sha256sum "$f" >/dev/null
done
