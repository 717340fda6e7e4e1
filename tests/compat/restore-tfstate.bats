#!/usr/bin/env bats
# restore-tfstate.sh's contract (the flags, exit codes and words its callers rely on), checked from
# outside on a copy of the homelab layout (backend.tf's s3 block commented out, the MinIO block in prod's
# tfvars at a TEST-NET address), inside `unshare -n`: MinIO cannot be reached, so every dry-run that
# passes proves the tool contacted nothing. The real round trip (moto as MinIO) is in
# crates/restore-tfstate/tests/cli/ (fallback_then_return_with_the_minio_block_only).

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup() {
  load '../common/helpers'
  load 'restore_helpers'
  bats_require_minimum_version 1.5.0
  homelab_up "$BATS_TEST_TMPDIR/homelab"
  export PVE_RETRY_DELAY=10ms PVE_RETRY_ATTEMPTS=2 HOME="$BATS_TEST_TMPDIR/home"
  export PVE_TFSTATE_BACKUP_DIR="$BATS_TEST_TMPDIR/backups"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY PVE_DRIFT_ROOT PVE_TOOLS_LANG LC_ALL LC_MESSAGES
  export LANG=C.UTF-8
}

@test "-h/--help: usage on stdout starting 'Usage: restore-tfstate.sh', naming every flag, exit 0" {
  run --separate-stderr script restore-tfstate --help
  assert_success
  assert_line --index 0 --regexp '^Usage: restore-tfstate\.sh'
  for flag in --env --list --restore --fallback --return --dry-run --force; do
    assert_output --partial -- "$flag"
  done
}

@test "no argument: 'Aucun argument fourni', non-zero" {
  run script restore-tfstate
  assert_failure
  assert_output --partial "Aucun argument fourni"
}

@test "missing --env: 'Option --env est requise', non-zero" {
  run script restore-tfstate --list
  assert_failure
  assert_output --partial "Option --env est requise"
}

@test "no action: 'Veuillez specifier une action: --list, --restore, --fallback, ou --return', non-zero" {
  run script restore-tfstate --env prod
  assert_failure
  assert_output --partial "Veuillez specifier une action: --list, --restore, --fallback, ou --return"
}

@test "--restore without a value: 'version-id requis', non-zero" {
  run script restore-tfstate --env prod --restore
  assert_failure
  assert_output --partial "version-id requis"
}

@test "an unknown option: 'Option inconnue: X', non-zero" {
  run script restore-tfstate --env prod --bogus
  assert_failure
  assert_output --partial "Option inconnue: --bogus"
}

@test "-V/--version print the version; the version selector is --version-id" {
  run script restore-tfstate -V
  assert_success
  assert_output --regexp '[0-9]+\.[0-9]+\.[0-9]+'
  run script restore-tfstate --env prod --list --version-id v1
  assert_failure
}

@test "--list --dry-run: the bucket listing of the MinIO block, 'Versions disponibles:', exit 0" {
  run --separate-stderr script restore-tfstate --env prod --list --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.20:9000/tfstate-prod?versions&prefix=terraform.tfstate"* ]]
  assert_line --index 0 "Versions disponibles:"
  [[ $stderr == *"Operation terminee avec succes"* ]]
}

@test "--restore VERSION_ID --dry-run: every request shown, nothing written, no save point, exit 0" {
  before=$(tree_sum)
  run --separate-stderr script restore-tfstate --env lab --restore v1 --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.20:9000/tfstate-lab/terraform.tfstate?versionId=v1"* ]]
  [[ $stderr == *"[DRY-RUN] PUT http://192.0.2.20:9000/tfstate-lab/terraform.tfstate"* ]]
  [[ $stderr != *" written to "* ]]
  [ ! -e "$PVE_TFSTATE_BACKUP_DIR" ]
  assert_equal "$(tree_sum)" "$before"
}

@test "--fallback --dry-run: backend.tf would be saved as backend.tf.minio-backup and rewritten; nothing is" {
  before=$(tree_sum)
  run --separate-stderr script restore-tfstate --env prod --fallback --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] copy $ENVS/prod/backend.tf to $ENVS/prod/backend.tf.minio-backup"* ]]
  [[ $stderr == *"[DRY-RUN] write $ENVS/prod/backend.tf (backend \"local\")"* ]]
  [[ $stderr == *"[DRY-RUN] cd $ENVS/prod && terraform init"* ]]
  [[ $stderr != *"now uses a local state"* ]]
  assert_equal "$(tree_sum)" "$before"
}

@test "--return --dry-run: MinIO's /minio/health/live first, then backend.tf back; nothing is" {
  before=$(tree_sum)
  run --separate-stderr script restore-tfstate --env prod --return --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.20:9000/minio/health/live"* ]]
  assert_equal "$(tree_sum)" "$before"
}

@test "an error exits 1: MinIO cannot be reached" {
  run script restore-tfstate --env prod --list
  assert_failure 1
}

@test "--return while MinIO does not answer: exit 1, backend.tf untouched" {
  before=$(tree_sum)
  run script restore-tfstate --env prod --return --force
  assert_failure 1
  assert_equal "$(tree_sum)" "$before"
}

@test "English outside the shims, French with --lang fr or a French locale; JSON the same in both" {
  run --separate-stderr binary restore-tfstate --env prod --list --dry-run
  assert_success
  assert_line --index 0 "Available versions:"
  run binary restore-tfstate --env prod
  assert_output --partial "please specify an action"
  LANG=fr_FR.UTF-8 run binary restore-tfstate --env prod
  assert_output --partial "Veuillez specifier une action"
  run --separate-stderr binary restore-tfstate --env prod --list --dry-run --json
  en=$output
  run --separate-stderr binary restore-tfstate --env prod --list --dry-run --json --lang fr
  assert_equal "$output" "$en"
  assert_equal "$(jq -r .schema <<<"$output")" "pve-tfstate/v1"
}

@test "usage errors keep exit 64" {
  run -64 binary restore-tfstate
  run -64 binary restore-tfstate --env prod
  run -64 binary restore-tfstate --env prod --list --fallback
}
