#!/usr/bin/env bats
# Behaviour pve-common gives every tool, seen through the tools: retry with backoff (only transient
# failures, attempts and delays as configured, the last cause named), dry-run, and confirmation refusal
# without a terminal. The S3 side is a loopback responder that answers 503 a chosen number of times.

setup() {
  load '../common/helpers'
  ROOT="$BATS_TEST_TMPDIR/environments"
  s3_env "$ROOT/prod"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret PVE_RETRY_DELAY=10ms
}

teardown() {
  if [[ -n ${FLAKY_PID:-} ]]; then kill "$FLAKY_PID" 2>/dev/null || true; fi
  if [[ -n ${MOTO_PID:-} ]]; then kill "$MOTO_PID" 2>/dev/null || true; fi
}

# flaky FAILURES [--not-found]: starts the responder; sets ENDPOINT.
flaky() {
  local portfile="$BATS_TEST_TMPDIR/port"
  "$PVE_TOOLS_ROOT/tests/restore/flaky-s3" "$portfile" "$@" &
  FLAKY_PID=$!
  for _ in $(seq 100); do [[ -s $portfile ]] && break; sleep 0.05; done
  ENDPOINT="http://127.0.0.1:$(cat "$portfile")"
}

list() {
  tool restore-tfstate --root "$ROOT" --env prod --endpoint "$1" --list
}

@test "retry: a transient failure then success is retried once, the attempt logged" {
  flaky 1
  run list "$ENDPOINT"
  assert_output --partial "attempt 1/3 failed"
  assert_output --partial "HTTP 503 SlowDown"
  refute_output --partial "attempt 2/3"
  # The answer after the retry is an empty listing: the tool reports that, not a connection problem.
  assert_output --partial "no state at s3://tfstate/prod/terraform.tfstate"
}

@test "retry: every attempt failing gives up after 3, naming the count and the last cause" {
  run list "http://127.0.0.1:9"
  assert_failure 1
  assert_output --partial "attempt 1/3 failed"
  assert_output --partial "attempt 2/3 failed"
  assert_output --partial "failed after 3 attempts"
  assert_output --partial "cannot reach http://127.0.0.1:9"
}

@test "retry: delays double from the configured first delay" {
  run list "http://127.0.0.1:9"
  assert_output --partial "retrying in 10ms"
  assert_output --partial "retrying in 20ms"
}

@test "retry: the attempt count is configurable" {
  PVE_RETRY_ATTEMPTS=5 run list "http://127.0.0.1:9"
  assert_failure 1
  assert_output --partial "attempt 4/5 failed"
  assert_output --partial "failed after 5 attempts"
}

@test "retry: an answer that is not transient (404) is not retried" {
  flaky 0 --not-found
  run list "$ENDPOINT"
  assert_failure 1
  assert_output --partial "NoSuchBucket"
  refute_output --partial "attempt 1/"
}

@test "retry: two transient failures then success within the default 3 attempts" {
  flaky 2
  run list "$ENDPOINT"
  assert_output --partial "attempt 2/3 failed"
  refute_output --partial "failed after 3 attempts"
}

@test "dry-run: the commands are shown on stderr, the usual summary on stdout, nothing runs" {
  bats_require_minimum_version 1.5.0
  # A copy of the example homelab as a fresh checkout has it: without Terraform's working files, which
  # running the README's first command leaves behind (and whose presence means no init is needed).
  local lab="$BATS_TEST_TMPDIR/homelab"
  mkdir -p "$lab"
  cp -a "$PVE_TOOLS_ROOT/examples/homelab/environments" "$PVE_TOOLS_ROOT/examples/homelab/modules" \
    "$PVE_TOOLS_ROOT/examples/homelab/variables.tf" "$PVE_TOOLS_ROOT/examples/homelab/terraform.tfvars" "$lab/"
  find "$lab" \( -name .terraform -o -name .terraform.lock.hcl \) -prune -exec rm -rf {} +
  run --separate-stderr tool check-drift --root "$lab/environments" --env lab --dry-run
  assert_success
  # The scripts' contract: every command on a [DRY-RUN] line, then the usual summary (data, on stdout).
  assert_line --regexp "^lab +In sync +dry-run$"
  # shellcheck disable=SC2154 # set by `run --separate-stderr`
  [[ $stderr == *"[DRY-RUN] "*"terraform init "* ]]
  [[ $stderr == *"[DRY-RUN] "*"terraform plan "* ]]
  [ ! -e "$lab/environments/lab/.terraform" ]
  [ ! -e "$lab/environments/lab/.terraform.tfstate.lock.info" ]
}

@test "confirm: no terminal and no --force declines with a clear message, nothing written" {
  bats_require_minimum_version 1.5.0
  moto_up tfstate
  MOTO_PID=$(cat "$BATS_FILE_TMPDIR/moto.pid")
  local s3="http://127.0.0.1:$BATS_S3_PORT"
  # moto refuses an unsigned overwrite: sign like any S3 client.
  for serial in 1 2; do
    curl -fs --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
      -X PUT "$s3/tfstate/prod/terraform.tfstate" -H 'Content-Type: application/json' \
      --data-binary "{\"version\":4,\"serial\":$serial,\"lineage\":\"l\",\"resources\":[]}" >/dev/null
  done
  local oldest before
  oldest=$(tool restore-tfstate --root "$ROOT" --env prod --endpoint "$s3" --list --json | jq -r '.versions[-1].version_id')
  before=$(tool restore-tfstate --root "$ROOT" --env prod --endpoint "$s3" --list --json | jq -c '[.versions[].version_id]')
  export PVE_TFSTATE_BACKUP_DIR="$BATS_TEST_TMPDIR/backups"
  run setsid -w "$PVE_TOOLS_BIN/restore-tfstate" --root "$ROOT" --env prod --endpoint "$s3" --restore "$oldest" </dev/null
  # restore-tfstate.sh exited 0 when the operator declined; so does the tool.
  assert_success
  assert_output --partial "overwrite the state of prod"
  assert_output --partial "nothing was changed"
  [ ! -e "$PVE_TFSTATE_BACKUP_DIR" ]
  assert_equal "$(tool restore-tfstate --root "$ROOT" --env prod --endpoint "$s3" --list --json | jq -c '[.versions[].version_id]')" "$before"
}
