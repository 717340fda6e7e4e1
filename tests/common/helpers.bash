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

# The test bed's simulated Proxmox node for a suite, from setup_file: `testbed up --no-monitoring` in
# $BATS_FILE_TMPDIR/bed (TESTBED_BIN, default $PVE_TOOLS_BIN/testbed), which exports TESTBED_SSH_* and
# PVE_SIM_STATE. Without the testbed binary nothing starts and need_node skips. Stop it in teardown_file
# with node_bed_down.
node_bed_up() {
  : "${TESTBED_BIN:=$PVE_TOOLS_BIN/testbed}"
  export TESTBED_BIN
  export BED_DIR="$BATS_FILE_TMPDIR/bed"
  if [[ -x $TESTBED_BIN ]]; then
    eval "$("$TESTBED_BIN" up --dir "$BED_DIR" --no-monitoring)"
  fi
  export RESTORE_VM_RETRY_DELAY_MS=10
}

node_bed_down() {
  if [[ -x ${TESTBED_BIN:-} && -d ${BED_DIR:-} ]]; then
    "$TESTBED_BIN" down --dir "$BED_DIR" >/dev/null 2>&1 || true
  fi
}

need_node() {
  [[ -n ${PVE_SIM_STATE:-} ]] || skip "no test bed ($TESTBED_BIN not built)"
}

# How many state-changing commands the simulated node has run.
journal_lines() {
  if [[ -f $PVE_SIM_STATE/journal.jsonl ]]; then wc -l <"$PVE_SIM_STATE/journal.jsonl"; else echo 0; fi
}

# s3_env DIR [--env ENV] [--bucket BUCKET] [--endpoint URL]: an environment whose state is in S3, laid out by
# the test bed as the Rust tests have it (`testbed fixture s3-env`): backend.tf with the `backend "s3"` block
# (state BUCKET/ENV/terraform.tfstate, default bucket tfstate, ENV the folder's name), and with --endpoint a
# backend.hcl naming the server. TESTBED_BIN (default $PVE_TOOLS_BIN/testbed) is the testbed binary.
s3_env() {
  "${TESTBED_BIN:-$PVE_TOOLS_BIN/testbed}" fixture s3-env "$@" >/dev/null
}

# A real S3 server (moto on loopback) for a suite, from setup_file: a free port exported as BATS_S3_PORT,
# the pid in $BATS_FILE_TMPDIR/moto.pid, and the versioned bucket $1 (default tfstate) created. moto does not
# check signatures on these calls, so plain curl sets the bucket up. Stop it in teardown_file with moto_down.
moto_up() {
  local bucket=${1:-tfstate}
  BATS_S3_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export BATS_S3_PORT
  moto_server -H 127.0.0.1 -p "$BATS_S3_PORT" >/dev/null 2>&1 &
  echo $! >"$BATS_FILE_TMPDIR/moto.pid"
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$BATS_S3_PORT/" >/dev/null && break
    sleep 0.1
  done
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/$bucket" >/dev/null
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/$bucket?versioning" -H 'Content-Type: application/xml' \
    -d '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' >/dev/null
}

moto_down() {
  if [[ -f "$BATS_FILE_TMPDIR/moto.pid" ]]; then
    kill "$(cat "$BATS_FILE_TMPDIR/moto.pid")" 2>/dev/null || true
  fi
}
