#!/usr/bin/env bash
# Shared by the restore-vm and restore-tfstate compatibility suites: a copy of the homelab layout
# (`testbed fixture homelab`, TEST-NET addresses only) and a way to run a script's replacement as its
# callers do, inside a network namespace without routes (`unshare -n`), so no packet can leave.

# homelab_up DIR [fixture options...]: lays the homelab out in DIR, installs the shims under its scripts/
# (as the .deb's shims stand in for the scripts), and sets HL and ENVS. A missing test bed is a failure,
# never a skip: a suite that skipped would prove nothing.
homelab_up() {
  HL=$1
  shift
  : "${TESTBED_BIN:=$PVE_TOOLS_BIN/testbed}"
  [[ -x $TESTBED_BIN ]] || fail "no test bed: $TESTBED_BIN is not built (cargo build -p testbed)"
  "$TESTBED_BIN" fixture homelab "$HL" "$@" >/dev/null
  "$PVE_TOOLS_BIN/check-drift" --install-shims "$HL" -q
  ENVS="$HL/infrastructure/proxmox/environments"
  export HL ENVS
}

# tree_sum: a fingerprint of every file of the environments (names, contents), to prove nothing was written.
tree_sum() {
  (cd "$ENVS" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

# script NAME ARGS...: runs the shim scripts/restore/NAME.sh as the callers run the script, inside a network
# namespace without routes.
script() {
  local name=$1
  shift
  unshare -n -- "$HL/scripts/restore/$name.sh" "$@"
}

# binary NAME ARGS...: the binary itself, in the network namespace, from inside the homelab (found by
# walking up from the current folder), in the caller's language.
binary() {
  local name=$1
  shift
  (cd "$HL/infrastructure/proxmox/environments" && unshare -n -- "$PVE_TOOLS_BIN/$name" "$@")
}
