# shellcheck shell=bash
# A stand-in for the bash scripts' common.sh: the part every script sources before doing anything
# (strict mode, colours, log helpers, a prerequisite check, argument helpers).
set -euo pipefail
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  RED=$'\e[31m' YELLOW=$'\e[33m' GREEN=$'\e[32m' RESET=$'\e[0m'
else
  RED='' YELLOW='' GREEN='' RESET=''
fi
SCRIPT_NAME=$(basename "$0")
: "${VERSION:=0.1.0}"
log_info() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
log_warn() { printf '%s%s: warning: %s%s\n' "$YELLOW" "$SCRIPT_NAME" "$*" "$RESET" >&2; }
log_error() { printf '%s%s: error: %s%s\n' "$RED" "$SCRIPT_NAME" "$*" "$RESET" >&2; }
log_success() { printf '%s%s: %s%s\n' "$GREEN" "$SCRIPT_NAME" "$*" "$RESET" >&2; }
die() {
  log_error "$*"
  exit 1
}
require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "missing prerequisite: $c"
  done
}
confirm() {
  local answer
  read -r -p "$1 [y/N] " answer </dev/tty
  [[ $answer == y || $answer == yes ]]
}
