#!/bin/sh
# restore-vm.sh: runs pve-tools' restore-vm in place of the script (written by check-drift --install-shims).
# The homelab root is this file's ../.., as for the script; output is French unless PVE_TOOLS_LANG
# says otherwise. To go back to the script, put the original file back at this path.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P) || exit 2
root=$(CDPATH='' cd -- "$here/../.." && pwd -P) || exit 2
PVE_TOOLS_LANG=${PVE_TOOLS_LANG:-fr}
export PVE_TOOLS_LANG
exec /usr/bin/restore-vm --prog-name restore-vm.sh --homelab "$root" "$@"
