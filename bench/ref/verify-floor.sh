#!/usr/bin/env bash
# The CPU floor of verify-deep's one pass: the same bytes decompressed and checked (`zstd -t`) and hashed
# with SHA-256 at hardware speed (`openssl dgst -sha256` uses SHA-NI where the CPU has it; coreutils'
# sha256sum does not). Not how the old script worked: what any tool that both tests and hashes must spend.
# Usage: verify-floor.sh DUMP_DIR
set -euo pipefail
for f in "$1"/*.zst; do
  zstd -q -t "$f"
  openssl dgst -sha256 "$f" >/dev/null
done
