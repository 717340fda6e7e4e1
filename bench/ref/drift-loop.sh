#!/usr/bin/env bash
# Reference for drift-fanout: the old check-drift.sh, environments one after another:
# init, plan -detailed-exitcode into a plan file, show -json | jq to count the changes.
# Usage: drift-loop.sh ROOT (TF_BIN: the terraform binary).
set -uo pipefail
root=$1
tf=${TF_BIN:-terraform}
drifted=0
for dir in "$root"/*/; do
  env=$(basename "$dir")
  (
    cd "$dir" || exit 1
    "$tf" init -input=false -no-color >/dev/null || exit 1
    "$tf" plan -input=false -no-color -detailed-exitcode -out=drift.tfplan >/dev/null
    rc=$?
    if [ "$rc" -eq 2 ]; then
      n=$("$tf" show -json drift.tfplan |
        jq '[.resource_changes[]? | select(.change.actions != ["no-op"] and .change.actions != ["read"])] | length')
      echo "$env: $n resource(s) drifted"
    elif [ "$rc" -ne 0 ]; then
      echo "$env: plan failed" >&2
    fi
    rm -f drift.tfplan
    exit "$rc"
  )
  [ $? -eq 2 ] && drifted=$((drifted + 1))
done
echo "$drifted environment(s) drifted"
