#!/usr/bin/env bats
# restore-tfstate's CLI contract, as the old restore-tfstate.sh suite checked it, against a real S3 server
# (moto on loopback) and real Terraform with the S3 backend.

setup_file() {
  load '../common/helpers'
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret PVE_RETRY_DELAY=10ms
  moto_up tfstate
  export ROOT="$BATS_FILE_TMPDIR/environments"
  s3_env "$ROOT/prod" --endpoint "http://127.0.0.1:$BATS_S3_PORT"
  cat >"$ROOT/prod/main.tf" <<'TF'
variable "memory" {
  default = 2048
}
resource "terraform_data" "vm" {
  input = { memory = var.memory }
}
TF
  (
    cd "$ROOT/prod" || exit 1
    terraform init -input=false -no-color -backend-config=backend.hcl >/dev/null
    terraform apply -auto-approve -input=false -no-color -var=memory=1024 >/dev/null
    terraform apply -auto-approve -input=false -no-color -var=memory=2048 >/dev/null
  )
}

teardown_file() {
  load '../common/helpers'
  moto_down
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  BACKUPS="$BATS_TEST_TMPDIR/backups"
}

rt() {
  tool restore-tfstate --root "$ROOT" --env prod --backup-dir "$BACKUPS" "$@"
}

@test "--list prints a table of versions, newest first" {
  run --separate-stderr rt --list
  assert_success
  assert_line --index 0 'Available versions:'
  assert_line --index 1 --regexp '^VERSION ID +LAST MODIFIED +SIZE +LATEST'
  assert_equal "${#lines[@]}" 4
  assert_line --index 2 --regexp ' yes *$'
}

@test "--list --details --json is one document jq can read" {
  run bash -c "$(declare -f rt tool); PVE_TOOLS_BIN=$PVE_TOOLS_BIN ROOT=$ROOT BACKUPS=$BACKUPS rt --list --details --json | jq -r '.schema, (.versions | length), .versions[0].details.serial'"
  assert_success
  assert_line --index 0 'pve-tfstate/v1'
  assert_line --index 1 '2'
  assert_line --index 2 --regexp '^[0-9]+$'
}

@test "--restore --preview writes nothing and says what it would do" {
  oldest=$(rt --list --json | jq -r '.versions[-1].version_id')
  before=$(rt --list --json | jq -c '[.versions[].version_id]')
  run rt --restore "$oldest" --preview
  assert_success
  assert_output --partial "[dry-run] would put s3://tfstate/prod/terraform.tfstate"
  assert_equal "$(rt --list --json | jq -c '[.versions[].version_id]')" "$before"
  [ ! -e "$BACKUPS" ]
}

@test "--restore without a terminal and without --force is declined (exit 0, as the script), nothing written" {
  oldest=$(rt --list --json | jq -r '.versions[-1].version_id')
  before=$(rt --list --json | jq -c '[.versions[].version_id]')
  run setsid -w "$PVE_TOOLS_BIN/restore-tfstate" --root "$ROOT" --env prod --backup-dir "$BACKUPS" --restore "$oldest" </dev/null
  assert_success
  assert_output --partial "nothing was changed"
  assert_equal "$(rt --list --json | jq -c '[.versions[].version_id]')" "$before"
  [ ! -e "$BACKUPS" ]
}

@test "--restore --yes makes an older version current with a higher serial" {
  oldest=$(rt --list --details --json | jq -r '.versions[-1].version_id')
  top=$(rt --list --details --json | jq -r '.versions[0].details.serial')
  run --separate-stderr rt --restore "$oldest" --yes --json
  assert_success
  assert_equal "$(jq -r .checksum_ok <<<"$output")" "true"
  assert_equal "$(jq -r .new_serial <<<"$output")" "$((top + 1))"
  save=$(jq -r .save_point <<<"$output")
  assert_equal "$(stat -c %a "$save")" "600"
}

@test "unknown version: exit 1 with a clear message" {
  run rt --restore does-not-exist --yes
  assert_failure 1
  assert_output --partial "does not exist; see --list"
}

@test "usage errors exit 64, never 2" {
  run rt --list --to-minio
  assert_failure 64
  run rt
  assert_failure 64
  run tool restore-tfstate --root "$ROOT" --env '../etc' --list
  assert_failure 64
  assert_output --partial "invalid environment name"
  run tool restore-tfstate --root "$ROOT" --env staging --list
  assert_failure 64
  assert_output --partial "known: prod"
}

@test "a held lock exits 75" {
  curl -fs -X PUT "http://127.0.0.1:$BATS_S3_PORT/tfstate/prod/terraform.tfstate.tflock" -H 'Content-Type: application/json' \
    -d '{"ID":"bats-lock","Operation":"OperationTypeApply","Info":"","Who":"bats@ci","Version":"1.11.4","Created":"2026-11-21T06:00:00Z","Path":"tfstate/prod/terraform.tfstate"}' >/dev/null
  v=$(rt --list --json | jq -r '.versions[0].version_id')
  run rt --restore "$v" --yes
  # Released the way an operator would, which also proves Terraform reads our lock object's format.
  (cd "$ROOT/prod" && terraform force-unlock -force bats-lock >/dev/null)
  assert_failure 75
  assert_output --partial "bats@ci"
  run rt --restore "$v" --yes
  assert_success
}
