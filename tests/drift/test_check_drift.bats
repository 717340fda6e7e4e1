#!/usr/bin/env bats
# CLI contract of check-drift: arguments, exit codes, JSON through jq, dry-run.
# The binary is taken from $PVE_TOOLS_BIN (default: target/debug of the repository).
# Environments are the Rust tests' fixtures: built-in terraform_data, local backend, no download.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

bats_require_minimum_version 1.5.0

setup() {
    REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    BIN_DIR="${PVE_TOOLS_BIN:-$REPO/target/debug}"
    CHECK_DRIFT="$BIN_DIR/check-drift"
    [ -x "$CHECK_DRIFT" ] || skip "no check-drift binary in $BIN_DIR (cargo build -p check-drift)"
    FIXTURES="$REPO/crates/check-drift/tests/fixtures"
    WORK="$(mktemp -d)"
    mkdir -p "$WORK/envs" "$WORK/tmp"
    export TMPDIR="$WORK/tmp"
    export PVE_DRIFT_LOCK_FILE="$WORK/run.lock"
    export NO_COLOR=1
    unset PVE_DRIFT_ROOT TF_BIN
}

teardown() {
    rm -rf "$WORK"
}

add_env() {
    mkdir -p "$WORK/envs/$1"
    cp "$FIXTURES/envs/basic/main.tf" "$FIXTURES/envs/basic/terraform.tfstate" "$WORK/envs/$1/"
}

check_drift() {
    "$CHECK_DRIFT" --root "$WORK/envs" "$@"
}

@test "--help documents the flags and the exit codes" {
    run check_drift --help
    assert_success
    assert_output --partial "--env"
    assert_output --partial "--dry-run"
    assert_output --partial "Exit status:"
    assert_output --partial "75"
}

@test "--version prints the version" {
    run check_drift --version
    assert_success
    assert_output --regexp '^check-drift [0-9]+\.[0-9]+\.[0-9]+'
}

@test "usage errors exit 64, never 2" {
    add_env lab
    for args in "--env ../etc" "--env a/b" "--jobs 0" "--timeout soon" "--nope"; do
        # shellcheck disable=SC2086
        run check_drift $args
        assert_equal "$status" 64
    done
}

@test "an unknown environment lists the known ones" {
    add_env lab
    add_env prod
    run check_drift --env staging
    assert_equal "$status" 64
    assert_output --partial "known environments: lab, prod"
}

@test "an in-sync environment exits 0 and its JSON says so" {
    add_env lab
    run --separate-stderr check_drift --json --terraform-bin terraform
    assert_success
    assert_equal "$(jq -r .schema <<<"$output")" "pve-drift/v1"
    assert_equal "$(jq -r '.summary.in_sync' <<<"$output")" 1
    assert_equal "$(jq -r '.environments[0].status' <<<"$output")" in_sync
    assert_equal "$(find "$WORK/tmp" -mindepth 1 | wc -l)" 0
}

@test "a configuration change exits 1 (drift, as check-drift.sh) with a pending update" {
    add_env lab
    echo 'memory = 10240' > "$WORK/envs/lab/terraform.tfvars"
    run --separate-stderr check_drift --json --terraform-bin terraform
    assert_equal "$status" 1
    run jq -r '.environments[0].resources[] | "\(.action) \(.origin) \(.risk) \(.address)"' <<<"$output"
    assert_output "update pending safe terraform_data.vm"
}

@test "the text report has the table and the details" {
    add_env lab
    echo 'memory = 10240' > "$WORK/envs/lab/terraform.tfvars"
    run --separate-stderr check_drift --terraform-bin terraform
    assert_equal "$status" 1
    assert_line --index 0 --regexp '^ENV +STATUS +\+CREATE +~UPDATE +-DELETE +-/\+REPLACE +IGNORED +ORIGIN +DURATION$'
    assert_output --partial "input.memory.dedicated: 8192 -> 10240"
}

@test "--dry-run prints the commands on [DRY-RUN] lines and runs nothing; --preview says 'would run'" {
    add_env lab
    run --separate-stderr check_drift --dry-run --terraform-bin "$FIXTURES/fake-terraform.sh"
    assert_success
    # The summary of check-drift.sh: the environment, "dry-run".
    assert_line --regexp '^lab +In sync +dry-run$'
    # shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`
    [[ "$stderr" == *"[DRY-RUN] cd $WORK/envs/lab && TF_IN_AUTOMATION=1"*"init '-input=false'"* ]]
    [[ "$stderr" == *"-detailed-exitcode"* ]]
    [[ "$stderr" == *"show -json"* ]]
    [ ! -e "$WORK/envs/lab/.terraform" ]
    run --separate-stderr check_drift --preview --terraform-bin "$FIXTURES/fake-terraform.sh"
    assert_success
    [[ "$stderr" == *"would run: cd $WORK/envs/lab && TF_IN_AUTOMATION=1"*"init '-input=false'"* ]]
    [[ "$stderr" == *"-detailed-exitcode"* ]]
    [[ "$stderr" == *"show -json"* ]]
    [ ! -e "$WORK/envs/lab/.terraform" ]
}

@test "check-drift never runs apply, import or state" {
    add_env lab
    FAKE_TF_LOG="$WORK/tf.log" FAKE_TF_SHOW_JSON="$FIXTURES/plans/bpg_mixed.json" \
        run --separate-stderr check_drift --json --terraform-bin "$FIXTURES/fake-terraform.sh"
    assert_equal "$status" 1
    # `terraform version` runs on a thread beside the first environment, so only its count is fixed; the
    # environment's own steps keep their order.
    run grep -c '^version' "$WORK/tf.log"
    assert_output 1
    run grep -v '^version' "$WORK/tf.log"
    run cut -d' ' -f1 <<<"$output"
    assert_output "$(printf 'init\nplan\nshow')"
}

@test "a held run lock exits 75 at once" {
    command -v flock >/dev/null || skip "no flock"
    add_env lab
    flock "$PVE_DRIFT_LOCK_FILE" sleep 5 &
    sleep 0.3
    run check_drift --terraform-bin "$FIXTURES/fake-terraform.sh"
    kill %1 2>/dev/null || true
    assert_equal "$status" 75
    assert_output --partial "another check-drift run holds the run lock"
}

@test "a closed pipe is not an error" {
    add_env lab
    run bash -c "'$CHECK_DRIFT' --root '$WORK/envs' --json --terraform-bin terraform 2>/dev/null | head -c 1 >/dev/null; echo \${PIPESTATUS[0]}"
    assert_output "0"
}
