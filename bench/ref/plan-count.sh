#!/usr/bin/env bash
# Reference for plan-scale: jq counting the changes of a `terraform show -json` plan per action, as
# {"create":N,"delete":N,"replace":N,"update":N}. Usage: plan-count.sh PLAN.json
set -euo pipefail
jq -c '[.resource_changes[]
        | select(.mode == "managed")
        | .change.actions
        | if . == ["delete","create"] or . == ["create","delete"] then "replace" else join(",") end
        | select(. != "no-op" and . != "read")]
       | group_by(.) | map({(.[0]): length}) | add // {}' "$1"
