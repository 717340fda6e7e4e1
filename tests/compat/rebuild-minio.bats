#!/usr/bin/env bats
# rebuild-minio.sh's contract (the flags, exit codes and words its callers rely on), checked from
# outside on a copy of the homelab layout (backend.tf's s3 block commented out, the MinIO block in the
# tfvars at a TEST-NET address), inside `unshare -n`: MinIO cannot be reached, so every dry-run that
# passes proves the tool contacted nothing. The real rebuild (Terraform starting S3 again) is in
# crates/rebuild-minio/tests/cli/.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup() {
  load '../common/helpers'
  load 'restore_helpers'
  bats_require_minimum_version 1.5.0
  homelab_up "$BATS_TEST_TMPDIR/homelab"
  export PVE_RETRY_DELAY=10ms PVE_RETRY_ATTEMPTS=2 HOME="$BATS_TEST_TMPDIR/home"
  export PVE_TFSTATE_BACKUP_DIR="$BATS_TEST_TMPDIR/backups"
  # A terraform that leaves a trace if anything runs it.
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  printf '#!/bin/sh\necho ran >>"%s"\nexit 1\n' "$BATS_TEST_TMPDIR/terraform-ran" >"$BATS_TEST_TMPDIR/bin/terraform"
  chmod +x "$BATS_TEST_TMPDIR/bin/terraform"
  export TF_BIN="$BATS_TEST_TMPDIR/bin/terraform"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY PVE_DRIFT_ROOT PVE_TOOLS_LANG LC_ALL LC_MESSAGES
  export LANG=C.UTF-8
}

@test "-h/--help: usage on stdout starting 'Usage: rebuild-minio.sh', naming every flag, exit 0" {
  run --separate-stderr script rebuild-minio --help
  assert_success
  assert_line --index 0 --regexp '^Usage: rebuild-minio\.sh'
  for flag in --env --dry-run --force; do
    assert_output --partial -- "$flag"
  done
}

@test "an unknown option: 'Option inconnue: X', non-zero" {
  run script rebuild-minio --bogus
  assert_failure
  assert_output --partial "Option inconnue: --bogus"
}

@test "--dry-run: health URL, targeted apply, buckets and re-initialisation shown; nothing contacted or written; summary; exit 0" {
  before=$(tree_sum)
  run --separate-stderr script rebuild-minio --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.20:9000/minio/health/live"* ]]
  [[ $stderr == *"[DRY-RUN] terraform -chdir=$ENVS/monitoring apply -target=module.minio -auto-approve"* ]]
  for env in prod lab monitoring; do
    [[ $stderr == *"[DRY-RUN] PUT http://192.0.2.20:9000/tfstate-$env (create bucket"* ]]
  done
  for env in prod monitoring; do
    [[ $stderr == *"[DRY-RUN] terraform -chdir=$ENVS/$env init -input=false -reconfigure"* ]]
  done
  assert_line "RESUME DE RECONSTRUCTION - Minio"
  [ ! -e "$BATS_TEST_TMPDIR/terraform-ran" ]
  [ ! -e "$PVE_TFSTATE_BACKUP_DIR" ]
  assert_equal "$(tree_sum)" "$before"
}

@test "--env defaults to monitoring; --env names another environment" {
  run --separate-stderr script rebuild-minio --dry-run --json
  assert_success
  assert_equal "$(jq -r .env <<<"$output")" monitoring
  run --separate-stderr script rebuild-minio --dry-run --json --env prod
  assert_success
  assert_equal "$(jq -r .env <<<"$output")" prod
}

@test "an error exits 1: MinIO cannot be reached and there is no save point" {
  before=$(tree_sum)
  run script rebuild-minio --force
  assert_failure 1
  [ ! -e "$BATS_TEST_TMPDIR/terraform-ran" ]
  assert_equal "$(tree_sum)" "$before"
}

@test "English outside the shims, French with --lang fr; JSON the same in both" {
  run --separate-stderr binary rebuild-minio --dry-run
  assert_success
  assert_line "REBUILD SUMMARY - Minio"
  run --separate-stderr binary rebuild-minio --dry-run --lang fr
  assert_line "RESUME DE RECONSTRUCTION - Minio"
  run --separate-stderr binary rebuild-minio --dry-run --json
  en=$output
  run --separate-stderr binary rebuild-minio --dry-run --json --lang fr
  assert_equal "$output" "$en"
  assert_equal "$(jq -r .schema <<<"$output")" "pve-rebuild-minio/v1"
}
