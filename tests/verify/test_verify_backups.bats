#!/usr/bin/env bats
# verify-backups' CLI contract: help, usage errors (64), the JSON document, exit codes, and the textfile
# metrics, against a real S3 server (moto on loopback) holding Terraform states. The guest and archive
# checks need the simulated node and are covered by crates/verify-backups/tests/cli/.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`
bats_require_minimum_version 1.5.0

setup_file() {
  load '../common/helpers'
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret
  moto_up tfstate
  export ROOT="$BATS_FILE_TMPDIR/environments" BAD_ROOT="$BATS_FILE_TMPDIR/bad-environments"
  for dir in "$ROOT/prod" "$ROOT/lab" "$BAD_ROOT/prod" "$BAD_ROOT/lab"; do
    env=${dir##*/}
    [[ $dir == "$BAD_ROOT"/* ]] && env="bad-$env"
    s3_env "$dir" --env "$env" --endpoint "http://127.0.0.1:$BATS_S3_PORT"
  done
  good='{"version":4,"terraform_version":"1.11.4","serial":2,"lineage":"l-1","outputs":{},"resources":[{"mode":"managed","type":"terraform_data","name":"vm","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"schema_version":0,"attributes":{"id":"x"}}]}]}'
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/prod/terraform.tfstate" -H "Content-Type: application/json" --data-binary "$good" >/dev/null
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/lab/terraform.tfstate" -H "Content-Type: application/json" --data-binary "$good" >/dev/null
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/bad-prod/terraform.tfstate" -H "Content-Type: application/json" --data-binary "$good" >/dev/null
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/bad-lab/terraform.tfstate" -H "Content-Type: application/json" \
    --data-binary '{"version":4,"serial":3,"lineage":"l-1","resources":[]}' >/dev/null
}

teardown_file() {
  load '../common/helpers'
  moto_down
}

setup() {
  load '../common/helpers'
  unset PVE_HOST PVE_DRIFT_ROOT PVE_BACKUP_TEXTFILE_DIR MINIO_URL PROMETHEUS_URL GRAFANA_URL ALERTMANAGER_URL
  export PVE_VERIFY_MANIFEST="$BATS_TEST_TMPDIR/manifest"
}

@test "--help documents the checks and the exit codes" {
  run tool verify-backups --help
  assert_success
  assert_output --partial "Usage: verify-backups"
  assert_output --partial "--deep"
  assert_output --partial "--local-dir"
  assert_output --partial "--textfile-dir"
  assert_output --partial "64"
}

@test "--version prints the version" {
  run tool verify-backups --version
  assert_success
  assert_output --regexp '^verify-backups [0-9]+\.[0-9]+\.[0-9]+'
}

@test "usage errors exit 64 with nothing on stdout" {
  run --separate-stderr tool verify-backups --max-age soon
  assert_equal "$status" 64
  assert_equal "$output" ""
  run --separate-stderr tool verify-backups --host pve.invalid --local-dir /nonexistent/dump
  assert_equal "$status" 64
  assert_equal "$stderr" "verify-backups: error: --local-dir /nonexistent/dump: no such directory"
  # Without a node there is no list of backups: asking to check them is a usage error, not an empty "OK".
  run --separate-stderr tool verify-backups --deep
  assert_equal "$status" 64
  assert_equal "$output" ""
  run --separate-stderr tool verify-backups --dump-dir nostorage
  assert_equal "$status" 64
  run --separate-stderr tool verify-backups --root /nonexistent
  assert_equal "$status" 64
}

@test "sound states: exit 0, pve-verify/v1 JSON, verdict line in text mode" {
  run --separate-stderr tool verify-backups --root "$ROOT" --json
  assert_success
  [ "$(jq -r .schema <<<"$output")" = "pve-verify/v1" ]
  [ "$(jq -r .status <<<"$output")" = "ok" ]
  [ "$(jq -r '.environments | length' <<<"$output")" = 2 ]
  [ "$(jq -r '.components[] | select(.name == "tfstate") | .status' <<<"$output")" = ok ]
  run --separate-stderr tool verify-backups --root "$ROOT" --details
  assert_success
  assert_line --partial "== Terraform state in S3 [OK]"
  assert_line --regexp '^verdict: OK'
}

@test "a state with no resources is an error (exit 2) and the metrics say so" {
  run --separate-stderr tool verify-backups --root "$BAD_ROOT" --textfile-dir "$BATS_TEST_TMPDIR" --details
  assert_failure 2
  assert_line --regexp '^FAIL +lab +state +the state \(serial 3\) has no resources'
  assert_line --regexp '^verdict: FAILED'
  run cat "$BATS_TEST_TMPDIR/pve_backup.prom"
  assert_line 'pve_backup_state_status{env="lab"} 2'
  assert_line 'pve_backup_state_status{env="prod"} 0'
  assert_line 'pve_backup_verify_success 0'
  run promtool check metrics <"$BATS_TEST_TMPDIR/pve_backup.prom"
  assert_success
}

@test "--dry-run writes no metrics file" {
  run --separate-stderr tool verify-backups --root "$ROOT" --textfile-dir "$BATS_TEST_TMPDIR" --dry-run
  [ ! -e "$BATS_TEST_TMPDIR/pve_backup.prom" ]
  [[ "$stderr" == *"[DRY-RUN]"* ]]
}

@test "a closed stdout pipe is not an error" {
  run bash -c 'set -o pipefail; "$PVE_TOOLS_BIN/verify-backups" --root "$ROOT" --json | head -c 1 >/dev/null'
  assert_success
}
