#!/usr/bin/env bash
# Reference for ssh-reuse: what the bash scripts do, one fresh `ssh` process (and connection) per remote
# command. Usage: ssh-per-command.sh COUNT (uses the test bed's TESTBED_SSH_CONFIG and TESTBED_SSH_HOST).
set -euo pipefail
count=${1:-50}
for _ in $(seq "$count"); do
  ssh -F "$TESTBED_SSH_CONFIG" -o BatchMode=yes "$TESTBED_SSH_HOST" pvesh get /version >/dev/null
done
