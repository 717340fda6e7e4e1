#!/usr/bin/env bats
# rebuild-monitoring's CLI contract: exit codes, URLs from flags or terraform.tfvars, one JSON document
# naming each failed component, --from-backup and the default mode's choice against the test bed's simulated
# node (`testbed up --no-monitoring`: VM 102 "monitoring" with a 3-hour-old backup; TESTBED_BIN, default
# $PVE_TOOLS_BIN/testbed). Real restores and the verification against the real Prometheus, Alertmanager and
# node_exporter are in crates/rebuild-monitoring/tests/cli/.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup_file() {
  load '../common/helpers'
  node_bed_up
}

teardown_file() {
  node_bed_down
}

node_args() {
  need_node
  NODE=(--host "$TESTBED_SSH_HOST" --ssh-config "$TESTBED_SSH_CONFIG" --node pve --vmid 102)
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  unset PROMETHEUS_URL ALERTMANAGER_URL GRAFANA_URL NODE_EXPORTER_URL PVE_HOST PVE_NODE PVE_SSH_USER PVE_SSH_CONFIG
  DEAD=(--prometheus-url http://127.0.0.1:9 --alertmanager-url http://127.0.0.1:9
    --grafana-url http://127.0.0.1:9 --node-exporter-url http://127.0.0.1:9)
}

@test "--help documents the exit codes; --version prints the version" {
  run tool rebuild-monitoring --help
  assert_success
  assert_output --partial 'Usage: rebuild-monitoring'
  assert_output --partial '--from-terraform'
  run tool rebuild-monitoring --version
  assert_success
  assert_output --regexp '^rebuild-monitoring [0-9]+\.[0-9]+\.[0-9]+'
}

@test "usage errors exit 64" {
  run -64 tool rebuild-monitoring --no-such-flag
  run -64 tool rebuild-monitoring --verify-only --from-terraform "${DEAD[@]}"
  run -64 tool rebuild-monitoring --verify-only --root /nonexistent
  assert_output --partial '--prometheus-url'
  run -64 tool rebuild-monitoring --verify-only --vmid 7 "${DEAD[@]}"
  run -64 tool rebuild-monitoring --from-backup not-a-volid "${DEAD[@]}"
}

@test "URLs come from terraform.tfvars (monitoring_host) when no flag gives them" {
  mkdir -p "$BATS_TEST_TMPDIR/homelab/environments"
  printf 'monitoring_host = "127.0.0.1"\nprometheus_url = "http://127.0.0.1:9"\n' >"$BATS_TEST_TMPDIR/homelab/terraform.tfvars"
  run --separate-stderr tool rebuild-monitoring --verify-only --deadline 1s --json --root "$BATS_TEST_TMPDIR/homelab/environments"
  assert_failure 1
  run jq -r '.urls.prometheus, .urls.grafana' <<<"$output"
  assert_output $'http://127.0.0.1:9\nhttp://127.0.0.1:3000'
}

@test "every component down: exit 1, one JSON document naming each" {
  run --separate-stderr tool rebuild-monitoring --verify-only --deadline 1s --json "${DEAD[@]}"
  assert_failure 1
  run jq -r '.schema, .outcome, ([.checks[] | select(.ok | not) | .component] | unique | join(","))' <<<"$output"
  assert_output $'pve-rebuild-monitoring/v1\nfailed\nalertmanager,grafana,node_exporter,prometheus'
}

@test "--from-backup or no mode without a VM id or a host is a usage error before any connection" {
  cd "$BATS_TEST_TMPDIR"
  run -64 tool rebuild-monitoring --from-backup --host 127.0.0.1 "${DEAD[@]}"
  assert_output --partial "monitoring VM id"
  run -64 tool rebuild-monitoring --from-backup --vmid 111 "${DEAD[@]}"
  assert_output --partial "no Proxmox host"
  # No mode is --mode restore, the replaced script's default: it needs the node too.
  run -64 tool rebuild-monitoring --vmid 111 "${DEAD[@]}"
  assert_output --partial "no Proxmox host"
}

@test "--from-backup --preview shows the save point, the restore and the start, and changes nothing" {
  node_args
  before=$(journal_lines)
  run --separate-stderr tool rebuild-monitoring --from-backup --preview --json "${NODE[@]}" "${DEAD[@]}"
  assert_success
  [[ $stderr == *"[dry-run] would run: vzdump 102 --storage local --mode snapshot"* ]]
  [[ $stderr == *"[dry-run] would run: qmrestore local:backup/vzdump-qemu-102-"*" 102 --storage local-lvm --force 1"* ]]
  run jq -r '.outcome, .rebuild.method, .rebuild.status, .rebuild.restore.overwrite, (.checks | length)' <<<"$output"
  assert_output $'would_rebuild\nfrom_backup\nplanned\ntrue\n0'
  [[ $(journal_lines) == "$before" ]]
}

@test "--mode auto: a recent backup is chosen, and the reason is said on stderr and in the JSON" {
  node_args
  before=$(journal_lines)
  run --separate-stderr tool rebuild-monitoring --mode auto --preview --json "${NODE[@]}" "${DEAD[@]}"
  assert_success
  [[ $stderr == *"younger than --max-age 7days: restoring from it (--from-backup)"* ]]
  run jq -r '.mode.kind, .rebuild.method, (.rebuild.reason | test("younger than"))' <<<"$output"
  assert_output $'auto\nfrom_backup\ntrue'
  [[ $(journal_lines) == "$before" ]]
}
