#!/usr/bin/env bats
# restore-vm.sh's contract (the flags, exit codes and words its callers rely on), checked from outside
# on a copy of the homelab layout, inside `unshare -n`: nothing here can reach a node, so every test that
# passes without one proves the tool did not need to contact it.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup() {
  load '../common/helpers'
  load 'restore_helpers'
  bats_require_minimum_version 1.5.0
  homelab_up "$BATS_TEST_TMPDIR/homelab"
  export RESTORE_VM_RETRY_DELAY_MS=10 HOME="$BATS_TEST_TMPDIR/home"
  unset PVE_HOST PVE_NODE PVE_SSH_USER PVE_TFVARS PVE_TOOLS_LANG LC_ALL LC_MESSAGES PVE_SSH_CONFIG
  export LANG=C.UTF-8
}

@test "-h/--help: usage on stdout starting 'Usage: restore-vm.sh', naming every flag, exit 0" {
  for h in -h --help; do
    run --separate-stderr script restore-vm 100 "$h"
    assert_success
    assert_line --index 0 --regexp '^Usage: restore-vm\.sh'
    for flag in --node --storage --date --target-id --dry-run --force; do
      assert_output --partial -- "$flag"
    done
  done
}

@test "VMID is required: 'VMID requis', non-zero" {
  run script restore-vm --dry-run
  assert_failure
  assert_output --partial "VMID requis"
}

@test "a VMID that is not a number: 'VMID invalide: doit etre un nombre', non-zero" {
  run script restore-vm abc --dry-run
  assert_failure
  assert_output --partial "VMID invalide: doit etre un nombre"
}

@test "an unknown option: 'Option inconnue: X', non-zero" {
  run script restore-vm 100 --bogus
  assert_failure
  assert_output --partial "Option inconnue: --bogus"
}

@test "--date not YYYY-MM-DD: 'Format de date invalide', non-zero" {
  for d in 2026-13-01 20-11-2026 yesterday 2026-11-20T02:00; do
    run script restore-vm 100 --date "$d" --dry-run
    assert_failure
    assert_output --partial "Format de date invalide"
  done
}

@test "--dry-run contacts nothing, prints every command on [DRY-RUN] lines, then the summary, exit 0" {
  run --separate-stderr script restore-vm 100 --dry-run
  assert_success
  # The node of the root tfvars (default_node), the backup storage `local`, qemu or lxc alike.
  [[ $stderr == *"[DRY-RUN] ssh root@pve pvesh get /nodes/pve/storage/local/content --content backup --vmid 100"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@pve qmrestore '<volid>' 100 "* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@pve pct restore 100 '<volid>' "* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@pve pvesh get /nodes/pve/qemu/100/status/current"* ]]
  [[ $stderr != *"attempt"* ]]
  assert_line --index 0 "RESUME DE RESTAURATION"
}

@test "--node is the node and, when nothing better is known, the SSH host; an environment's node uses its endpoint" {
  run --separate-stderr script restore-vm 100 --node pve-other --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] ssh root@pve-other pvesh get /nodes/pve-other/storage/local/content"* ]]
  run --separate-stderr script restore-vm 100 --node pve-prod --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.10 pvesh get /nodes/pve-prod/storage/local/content"* ]]
}

@test "--storage is the backup storage searched, --target-id the id restored to, --date the day" {
  run --separate-stderr script restore-vm 100 --storage backup2 --target-id 9100 --date 2026-11-20 --dry-run
  assert_success
  [[ $stderr == *"pvesh get /nodes/pve/storage/backup2/content --content backup --vmid 100"* ]]
  [[ $stderr == *"qmrestore '<volid>' 9100 "* ]]
  [[ $stderr == *"pct restore 9100 '<volid>' "* ]]
  assert_output --partial ">= 2026-11-20"
}

@test "--force is accepted and answers yes (a dry-run still contacts nothing)" {
  run --separate-stderr script restore-vm 100 --force --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] ssh root@pve vzdump 100 "* ]]
  [[ $stderr == *"--force 1"* ]]
}

@test "a failure exits 1: the node cannot be reached" {
  run script restore-vm 100 --node pve-prod --force
  assert_failure 1
}

@test "without a terminal and without --force, overwriting is not assumed: end of input is no" {
  # No node is reachable here, so the tool stops before the question; what matters is that it never
  # hangs on stdin and never exits 0 without having restored.
  run script restore-vm 100 --node pve-prod </dev/null
  assert_failure 1
}

@test "English outside the shims, French with --lang fr or a French locale" {
  run --separate-stderr binary restore-vm 100 --dry-run
  assert_success
  assert_output --partial "RESTORE SUMMARY"
  run binary restore-vm
  assert_failure
  assert_output --partial "VMID required"
  LANG=fr_FR.UTF-8 run binary restore-vm
  assert_output --partial "VMID requis"
  run binary restore-vm --lang fr
  assert_output --partial "VMID requis"
}

@test "--json is the same document in both languages" {
  run --separate-stderr binary restore-vm 100 --dry-run --json
  assert_success
  en=$(jq -S 'del(.duration_seconds)' <<<"$output")
  run --separate-stderr binary restore-vm 100 --dry-run --json --lang fr
  assert_success
  fr=$(jq -S 'del(.duration_seconds)' <<<"$output")
  assert_equal "$fr" "$en"
  assert_equal "$(jq -r .schema <<<"$output")" "pve-restore-vm/v2"
}

@test "usage errors keep exit 64" {
  run -64 binary restore-vm abc
  run -64 binary restore-vm 100 --bogus
}
