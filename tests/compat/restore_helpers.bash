#!/usr/bin/env bash
# Shared by the restore-vm and restore-tfstate compatibility suites: a copy of the homelab layout
# (`testbed fixture homelab`, TEST-NET addresses only) and a way to run a script's replacement as its
# callers do, inside a network namespace without routes (`unshare -n`), so no packet can leave.

# homelab_up DIR [fixture options...]: lays the homelab out in DIR and sets HL.
homelab_up() {
  HL=$1
  shift
  : "${TESTBED_BIN:=$PVE_TOOLS_BIN/testbed}"
  [[ -x $TESTBED_BIN ]] || skip "no test bed ($TESTBED_BIN not built)"
  "$TESTBED_BIN" fixture homelab "$HL" "$@" >/dev/null 2>&1 ||
    skip "this testbed has no 'fixture homelab' command"
  export HL
}

# script NAME ARGS...: runs scripts/restore/NAME.sh as the callers do: the shim when it is installed,
# else the binary with what the shim passes (the homelab root, French, the script's name).
script() {
  local name=$1
  shift
  if [[ -x $HL/scripts/restore/$name.sh ]]; then
    unshare -n -- "$HL/scripts/restore/$name.sh" "$@"
  else
    unshare -n -- "$PVE_TOOLS_BIN/$name" --homelab "$HL" --lang fr --prog-name "$name.sh" "$@"
  fi
}

# binary NAME ARGS...: the binary itself, in the network namespace, from inside the homelab (found by
# walking up from the current folder), in the caller's language.
binary() {
  local name=$1
  shift
  (cd "$HL/infrastructure/proxmox/environments" && unshare -n -- "$PVE_TOOLS_BIN/$name" "$@")
}
