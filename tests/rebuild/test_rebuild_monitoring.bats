#!/usr/bin/env bats
# rebuild-monitoring's CLI contract: exit codes, URLs from flags or terraform.tfvars, one JSON document
# naming each failed component, --from-backup refused clearly while restore-vm's library is not linked.
# Verification against the real Prometheus, Alertmanager and node_exporter is in
# crates/rebuild-monitoring/tests/cli.rs.

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  unset PROMETHEUS_URL ALERTMANAGER_URL GRAFANA_URL NODE_EXPORTER_URL
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

@test "--from-backup fails clearly while restore-vm's library is pending (no fake success)" {
  run --separate-stderr tool rebuild-monitoring --from-backup --vmid 111 --json "${DEAD[@]}"
  assert_failure 1
  # shellcheck disable=SC2154 # set by run --separate-stderr
  [[ $stderr == *"restore-vm library pending"* ]]
  run jq -r '.outcome, .rebuild.method, (.checks | length)' <<<"$output"
  assert_output $'failed\nfrom_backup\n0'
}
