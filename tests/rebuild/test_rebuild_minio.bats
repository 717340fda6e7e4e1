#!/usr/bin/env bats
# rebuild-minio's CLI contract: exit codes, the JSON document, "healthy means no-op" and "dry-run changes
# nothing", against a real S3 server (moto on loopback). The full rebuild (a real targeted apply that
# starts S3 again) is in crates/rebuild-minio/tests/cli/.

setup_file() {
  load '../common/helpers'
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret PVE_RETRY_ATTEMPTS=1
  moto_up tfstate
  export STATE='{"version":4,"terraform_version":"1.11.4","serial":3,"lineage":"0b7e0c1e-1111-2222-3333-444455556666","outputs":{},"resources":[]}'
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/monitoring/terraform.tfstate" \
    -H 'Content-Type: application/json' --data-binary "$STATE" >/dev/null
  export ROOT="$BATS_FILE_TMPDIR/environments"
  s3_env "$ROOT/monitoring" --endpoint "http://127.0.0.1:$BATS_S3_PORT"
}

teardown_file() {
  load '../common/helpers'
  moto_down
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  SAVE="$BATS_TEST_TMPDIR/save-points"
  mkdir -p "$SAVE"
  printf '%s\n' "$STATE" >"$SAVE/monitoring-20261121T000000Z.tfstate"
}

rm_() {
  tool rebuild-minio --root "$ROOT" --state-from "$SAVE" "$@"
}

@test "--help documents the exit codes; --version prints the version" {
  run rm_ --help
  assert_success
  assert_output --partial 'Usage: rebuild-minio'
  assert_output --partial '--state-from'
  run rm_ --version
  assert_success
  assert_output --regexp '^rebuild-minio [0-9]+\.[0-9]+\.[0-9]+'
}

@test "usage errors exit 64 before touching anything" {
  run -64 rm_ --no-such-flag
  run -64 rm_ --env nope
  run -64 rm_ --target terraform_data.x
  assert_output --partial 'module address'
  run -64 rm_ --buckets Not_A_Bucket
  run -64 rm_ --health-timeout 0s
}

@test "healthy MinIO with sound buckets and states: exit 0, nothing done" {
  run --separate-stderr rm_ --json
  assert_success
  run jq -r '.schema, .outcome, .health.live, (.steps | length)' <<<"$output"
  assert_output $'pve-rebuild-minio/v1\nhealthy\ntrue\n1'
}

@test "the text report goes to stdout, messages to stderr" {
  run --separate-stderr rm_
  assert_success
  assert_line --index 0 'env: monitoring'
  assert_line 'outcome: healthy'
  # shellcheck disable=SC2154 # set by run --separate-stderr
  [[ $stderr == *"nothing to do"* ]]
}

@test "MinIO down, --preview: says what it would do, changes nothing, exit 0" {
  local endpoint=http://127.0.0.1:9
  run --separate-stderr rm_ --preview --json --endpoint "$endpoint"
  assert_success
  run jq -r '.outcome, .dry_run, .health.live, ([.steps[] | select(.status == "planned")] | length > 0)' <<<"$output"
  assert_output $'would_rebuild\ntrue\nfalse\ntrue'
  [ ! -e "$ROOT/monitoring/pve_local_backend_override.tf" ]
  [ ! -e "$ROOT/monitoring/terraform.tfstate" ]
  run ls "$SAVE"
  assert_output 'monitoring-20261121T000000Z.tfstate'
}

@test "MinIO down, no save point: exit 1 with the reason, still one JSON document" {
  rm "$SAVE"/*.tfstate
  run --separate-stderr rm_ --preview --json --endpoint http://127.0.0.1:9
  assert_failure 1
  run jq -r '.outcome, (.steps[-1].name), (.steps[-1].detail | test("no save point"))' <<<"$output"
  assert_output $'failed\nto_local\ntrue'
}
