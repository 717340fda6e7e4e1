#!/usr/bin/env bash
# Shared setup for the BATS suites: bats-support/bats-assert, and the binaries under test found through one
# variable, PVE_TOOLS_BIN (default: the workspace's target/debug), so a homelab repo can point the suites at
# installed binaries (PVE_TOOLS_BIN=/usr/bin).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

PVE_TOOLS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PVE_TOOLS_ROOT
: "${PVE_TOOLS_BIN:=$PVE_TOOLS_ROOT/target/debug}"
export PVE_TOOLS_BIN
export NO_COLOR=1

# shellcheck disable=SC2034 # used by the suites that load this file
PVE_TOOLS=(check-drift restore-vm restore-tfstate rebuild-minio rebuild-monitoring verify-backups)

tool() {
  local name=$1
  shift
  "$PVE_TOOLS_BIN/$name" "$@"
}
