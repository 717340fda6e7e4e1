#!/usr/bin/env bash
# Reference for state-list: the old restore-tfstate.sh --list with details: list the versions, then one
# GET per version (a fresh signed curl each, as with `mc cat --version-id`) piped to jq.
# Usage: state-list.sh ENDPOINT BUCKET KEY (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set).
set -euo pipefail
endpoint=$1 bucket=$2 key=$3
sig=(--aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
versions=$(curl -fsS "${sig[@]}" "$endpoint/$bucket?versions&prefix=$key" |
  grep -o '<VersionId>[^<]*</VersionId>' | sed 's/<[^>]*>//g')
printf 'VERSION\tSERIAL\tLINEAGE\tTERRAFORM\tRESOURCES\n'
for v in $versions; do
  curl -fsS "${sig[@]}" "$endpoint/$bucket/$key?versionId=$v" |
    jq -r --arg v "$v" '[$v, .serial, .lineage, .terraform_version, (.resources | length)] | @tsv'
done
