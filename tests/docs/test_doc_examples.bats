#!/usr/bin/env bats
# Documented commands are real: every tool command line in README.md and docs/*.md is accepted by the
# tool (tests/docs/check-doc-commands), and the documented --help and --dry-run examples run.

setup() {
  load '../common/helpers'
}

@test "every documented command line uses flags the tools accept" {
  run "$PVE_TOOLS_ROOT/tests/docs/check-doc-commands"
  assert_success
  refute_output --partial FAILED
}

@test "the documented --help of every tool runs" {
  for t in "${PVE_TOOLS[@]}"; do
    run tool "$t" --help
    assert_success
  done
}
