#!/usr/bin/env bash
# Reference for startup: a bash script sourcing a common.sh-like file and answering --version.
# shellcheck source=bench/ref/common-stub.sh
source "$(dirname "${BASH_SOURCE[0]}")/common-stub.sh"
require_cmd jq ssh
if [ "${1:-}" = "--version" ]; then
  echo "$SCRIPT_NAME $VERSION"
fi
