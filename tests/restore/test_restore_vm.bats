#!/usr/bin/env bats
# restore-vm's CLI contract (arguments, exit codes, dry-run output) against the test bed's simulated Proxmox
# node: a real sshd on loopback with pve-sim as pvesh/qm/pct/qmrestore/vzdump. The node comes from
# `testbed up` (TESTBED_BIN, default $PVE_TOOLS_BIN/testbed) and is stopped in teardown_file.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup_file() {
  load '../common/helpers'
  node_bed_up
  if [[ -n ${PVE_SIM_STATE:-} ]]; then
    export PVE_SSH_CONFIG=$TESTBED_SSH_CONFIG PVE_HOST=$TESTBED_SSH_HOST PVE_NODE=pve
  fi
}

teardown_file() {
  node_bed_down
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
}

@test "--help documents the contract" {
  run tool restore-vm --help
  assert_success
  for flag in --list --backup --latest --at --target-id --storage --node --start --unique --no-verify \
    --dry-run --force --yes --json --host --user --port --tfvars PVE_HOST PVE_NODE PVE_SSH_USER node_name \
    ssh_user proxmox_endpoint; do
    assert_output --partial -- "$flag"
  done
}

@test "guest ids outside 100..999999999 are usage errors (64) before any connection" {
  # Port 1 on loopback refuses: a connection attempt would end with 1, not 64.
  for id in 99 0 abc 1000000000 -5 100x; do
    run -64 tool restore-vm --host 127.0.0.1 --port 1 -- "$id"
  done
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --target-id 99
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --target-id 1000000000
  assert_output --partial "--target-id"
}

@test "malformed --backup, --at and conflicting selections are usage errors" {
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --backup 'local:backup/x;reboot'
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --backup 'no-storage'
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --at yesterday
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --latest --at 2026-11-20
  run -64 tool restore-vm --host 127.0.0.1 --port 1 100 --list --target-id 200
}

@test "no host from flags, environment or tfvars is a usage error" {
  cd "$BATS_TEST_TMPDIR"
  run -64 env -u PVE_HOST -u PVE_TFVARS "$PVE_TOOLS_BIN/restore-vm" 100 --list
  assert_output --partial "no Proxmox host"
}

@test "an unreachable host fails with 1 after retries" {
  run -1 env -u PVE_SSH_CONFIG "$PVE_TOOLS_BIN/restore-vm" --host 127.0.0.1 --port 1 --node pve 100 --list
  assert_output --partial "attempt 1/3"
}

@test "--list prints the backups of a guest" {
  need_node
  run --separate-stderr tool restore-vm 100 --list
  assert_success
  assert_line --index 0 --regexp '^DATE +TYPE +FORMAT +SIZE +STORAGE +PROTECTED +VERIFIED +VOLID'
  assert_output --regexp 'qemu +vma\.zst .* local +no +- +local:backup/vzdump-qemu-100-'
}

@test "--list --json carries the schema" {
  need_node
  run --separate-stderr tool restore-vm 101 --list --json
  assert_success
  assert_output --partial '"schema": "pve-restore-vm/v2"'
  assert_output --partial '"type": "lxc"'
}

@test "--preview over an existing guest shows the save point and the restore, and changes nothing" {
  need_node
  before=$(journal_lines)
  run --separate-stderr tool restore-vm 100 --force --preview
  assert_success
  [[ $stderr == *"[dry-run] would run: vzdump 100 --storage local --mode snapshot"* ]]
  [[ $stderr == *"[dry-run] would run: qm shutdown 100"* ]]
  [[ $stderr == *"[dry-run] would run: qmrestore local:backup/vzdump-qemu-100-"*" 100 --storage local-lvm --force 1"* ]]
  assert_output --partial "result:       dry-run"
  [[ $(journal_lines) == "$before" ]]
}

@test "--preview of a container uses pct restore <id> <volid>" {
  need_node
  run --separate-stderr tool restore-vm 101 --target-id 301 --preview
  assert_success
  [[ $stderr == *"[dry-run] would run: pct restore 301 local:backup/vzdump-lxc-101-"*" --storage local-lvm"* ]]
}

@test "an existing guest is not overwritten without --force when nobody answers yes" {
  need_node
  before=$(journal_lines)
  run -1 setsid -w "$PVE_TOOLS_BIN/restore-vm" 100 </dev/null
  assert_output --partial "overwrite VM 100"
  [[ $(journal_lines) == "$before" ]]
}

@test "a volid that is not in the listing is refused" {
  need_node
  run -1 tool restore-vm 100 --force --yes --backup local:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst
  assert_output --partial "not a backup of 100"
}

@test "without a terminal and without --force, overwriting is refused" {
  need_node
  before=$(journal_lines)
  run -1 setsid -w "$PVE_TOOLS_BIN/restore-vm" 100 --target-id 100 </dev/null
  assert_output --partial "overwrite VM 100"
  [[ $(journal_lines) == "$before" ]]
}
