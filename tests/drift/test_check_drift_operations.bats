#!/usr/bin/env bats
# check-drift in operation: textfile metrics, report files, `history`, `install-timer`, the settings
# read from the environment (as /etc/default/pve-drift-check provides them to the service).
# The binary is taken from $PVE_TOOLS_BIN (default: target/debug of the repository).

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

bats_require_minimum_version 1.5.0

setup() {
    REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
    BIN_DIR="${PVE_TOOLS_BIN:-$REPO/target/debug}"
    CHECK_DRIFT="$BIN_DIR/check-drift"
    [ -x "$CHECK_DRIFT" ] || skip "no check-drift binary in $BIN_DIR (cargo build -p check-drift)"
    command -v terraform >/dev/null || skip "terraform not installed"
    FIXTURES="$REPO/crates/check-drift/tests/fixtures"
    WORK="$(mktemp -d)"
    mkdir -p "$WORK/envs" "$WORK/tmp" "$WORK/textfile"
    export TMPDIR="$WORK/tmp"
    export PVE_DRIFT_LOCK_FILE="$WORK/run.lock"
    export NO_COLOR=1
    # What /etc/default/pve-drift-check sets for the service.
    export PVE_DRIFT_ROOT="$WORK/envs"
    export PVE_DRIFT_TEXTFILE_DIR="$WORK/textfile"
    export PVE_DRIFT_REPORT_DIR="$WORK/reports"
    export PVE_DRIFT_STATE_FILE="$WORK/state.json"
    export PVE_DRIFT_TIMEOUT=2m
    export PVE_DRIFT_RETENTION=30d
    export TF_BIN=terraform
    unset PVE_DRIFT_ALERTMANAGER_URL
}

teardown() {
    rm -rf "$WORK"
}

add_env() {
    mkdir -p "$WORK/envs/$1"
    cp "$FIXTURES/envs/basic/main.tf" "$FIXTURES/envs/basic/terraform.tfstate" "$WORK/envs/$1/"
}

@test "settings from the environment: metrics, reports and state are written" {
    add_env prod
    run "$CHECK_DRIFT" --all
    assert_success
    run grep -c '^pve_drift_status{env="prod"} 0$' "$WORK/textfile/pve_drift.prom"
    assert_output 1
    [ "$(stat -c %a "$WORK/textfile/pve_drift.prom")" = 644 ]
    [ "$(stat -c %a "$WORK/reports/drift-$(date +%F)-prod.json")" = 640 ]
    [ -f "$WORK/reports/drift-$(date +%F)-prod.log" ]
    [ -f "$WORK/state.json" ]
    if command -v promtool >/dev/null; then
        run promtool check metrics < "$WORK/textfile/pve_drift.prom"
        assert_success
    fi
}

@test "history --json goes through jq" {
    add_env prod
    run "$CHECK_DRIFT" --all
    assert_success
    run bash -c "'$CHECK_DRIFT' history --since 7d --json | jq -r '.schema, .environments[0].env, .environments[0].current'"
    assert_success
    assert_output $'pve-drift-history/v1\nprod\nin_sync'
}

@test "history of an empty report directory says so and exits 0" {
    mkdir -p "$WORK/reports"
    run "$CHECK_DRIFT" history
    assert_success
    assert_output --partial "no drift reports since"
}

@test "install-timer --dry-run shows the files and systemctl commands and writes nothing" {
    run "$CHECK_DRIFT" install-timer --dry-run --unit-dir "$WORK/units" --binary /usr/bin/check-drift
    assert_success
    assert_output --partial "would write: $WORK/units/pve-drift-check.service"
    assert_output --partial "would run: systemctl enable --now pve-drift-check.timer"
    [ ! -e "$WORK/units" ]
}

@test "a bad Alertmanager URL is a usage error" {
    run "$CHECK_DRIFT" --alertmanager-url ftp://example
    assert_failure 64
}
