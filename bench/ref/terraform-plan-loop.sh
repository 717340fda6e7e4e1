#!/usr/bin/env bash
# The floor for drift-fanout: bare `terraform plan` in each environment, one after another, nothing else.
# Usage: terraform-plan-loop.sh ROOT (TF_BIN: the terraform binary).
set -euo pipefail
root=$1
tf=${TF_BIN:-terraform}
for dir in "$root"/*/; do
  (cd "$dir" && "$tf" plan -input=false -no-color >/dev/null)
done
