#!/usr/bin/env bash
# The parallel limit for drift-fanout: bare `terraform plan` in every environment, as many at a time as
# there are CPUs (what check-drift --jobs auto runs), nothing else. Its speed-up over
# terraform-plan-loop.sh is the most any tool running Terraform can get on this machine.
# Usage: terraform-plan-parallel.sh ROOT (TF_BIN: the terraform binary).
set -euo pipefail
root=$1
export TF_BIN=${TF_BIN:-terraform}
# shellcheck disable=SC2016 # expanded by the inner shell
printf '%s\0' "$root"/*/ | xargs -0 -P "$(nproc)" -I{} sh -c 'cd "$1" && "$TF_BIN" plan -input=false -no-color >/dev/null' sh {}
