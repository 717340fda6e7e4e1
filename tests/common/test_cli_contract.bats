#!/usr/bin/env bats
# The contract every tool keeps: --help and --version exit 0 on stdout, usage errors exit 64 (never 2,
# which check-drift reserves for drift), messages carry the tool's name on stderr.

setup() {
  load 'helpers'
}

@test "every tool answers --help and --version with exit 0" {
  for t in "${PVE_TOOLS[@]}"; do
    run tool "$t" --help
    assert_success
    assert_output --partial "Usage: $t"
    assert_output --partial "Exit status:"
    run tool "$t" --version
    assert_success
    assert_output --regexp "^$t [0-9]+\.[0-9]+\.[0-9]+"
  done
}

@test "an unknown flag is a usage error: exit 64, never 2" {
  for t in "${PVE_TOOLS[@]}"; do
    run tool "$t" --no-such-flag
    assert_failure 64
  done
}

@test "-v and -q together are a usage error" {
  run tool check-drift -v -q
  assert_failure 64
  assert_output --partial "cannot be used with"
}

@test "check-drift's help documents the drift exit code" {
  run tool check-drift --help
  assert_output --partial "1    drift in at least one environment"
  assert_output --partial "2    at least one environment errored"
}
