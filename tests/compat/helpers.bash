#!/usr/bin/env bash
# Shared setup of the compatibility suites (tests/compat/*.bats): each runs the shims of the replaced scripts
# in a homelab laid out by `testbed fixture homelab` (TEST-NET addresses only), every command inside a
# network namespace without routes (`unshare -n`), every default system path redirected into the test's own
# folder.

# shellcheck source=tests/common/helpers.bash
source "$(dirname "${BASH_SOURCE[0]}")/../common/helpers.bash"

: "${TESTBED_BIN:=$PVE_TOOLS_BIN/testbed}"
export TESTBED_BIN

# compat_homelab [FIXTURE OPTIONS...]: lays out $HOMELAB (the fixture, then the shims pointing at
# $PVE_TOOLS_BIN) and redirects check-drift's metrics, reports, state and lock into $BATS_TEST_TMPDIR.
compat_homelab() {
  HOMELAB="$BATS_TEST_TMPDIR/homelab"
  export HOMELAB
  "$TESTBED_BIN" fixture homelab "$HOMELAB" "$@" 2>/dev/null
  "$PVE_TOOLS_BIN/check-drift" --install-shims "$HOMELAB" -q
  export PVE_DRIFT_TEXTFILE_DIR="$BATS_TEST_TMPDIR/textfile"
  export PVE_DRIFT_REPORT_DIR="$BATS_TEST_TMPDIR/reports"
  export PVE_DRIFT_STATE_FILE="$BATS_TEST_TMPDIR/state.json"
  export PVE_DRIFT_LOCK_FILE="$BATS_TEST_TMPDIR/pve-drift.lock"
  export HOMELAB_KNOWN_HOSTS="$BATS_TEST_TMPDIR/known_hosts"
  unset PVE_TOOLS_LANG PVE_HOMELAB PVE_DRIFT_ROOT LC_ALL LC_MESSAGES
  export LANG=C.UTF-8
}

# offline CMD...: runs CMD from / (never the homelab) in a network namespace without routes.
offline() {
  (cd / && unshare -n "$@")
}
