#!/usr/bin/env bats
# verify-backups.sh's contract (the flags, exit codes and words its callers rely on), checked from
# outside on a copy of the homelab layout (each environment's node at a TEST-NET address, MinIO at
# 192.0.2.20), inside `unshare -n`: no node and no S3 can be reached, so every dry run that passes proves
# the tool contacted nothing. The checks themselves run on the test bed through the same shim in
# tests/compat/verify-backups-bed.bats.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup() {
  load '../common/helpers'
  load 'restore_helpers'
  bats_require_minimum_version 1.5.0
  homelab_up "$BATS_TEST_TMPDIR/homelab"
  export HOME="$BATS_TEST_TMPDIR/home" PVE_RETRY_DELAY=10ms PVE_RETRY_ATTEMPTS=2
  export HOMELAB_KNOWN_HOSTS="$BATS_TEST_TMPDIR/known_hosts"
  export PVE_VERIFY_MANIFEST="$BATS_TEST_TMPDIR/manifest"
  unset PVE_HOST PVE_NODE PVE_SSH_USER PVE_SSH_CONFIG PVE_TOOLS_LANG LC_ALL LC_MESSAGES PVE_DRIFT_ROOT \
    PVE_BACKUP_TEXTFILE_DIR MINIO_URL PROMETHEUS_URL GRAFANA_URL ALERTMANAGER_URL AWS_ACCESS_KEY_ID \
    AWS_SECRET_ACCESS_KEY SSH_INIT_MODE
  export LANG=C.UTF-8
}

# The sample report's frame and the counts the TUI parses.
assert_sample_report() {
  assert_line "RAPPORT DE VERIFICATION DES SAUVEGARDES"
  assert_line "Type | Composant | Statut | Dernier backup | Details"
  assert_line "RESUME"
  assert_line --regexp '^Total verifie: [1-9][0-9]*$'
  assert_line --regexp '^OK: [1-9][0-9]*$'
  assert_line "Warnings: 0"
  assert_line "Erreurs: 0"
}

@test "-h/--help anywhere: usage on stdout starting 'Usage: verify-backups.sh', naming every flag, exit 0" {
  for args in "-h" "--help" "--full --help" "--node pve-prod -h"; do
    # shellcheck disable=SC2086 # the flags are split on purpose
    run --separate-stderr script verify-backups $args
    assert_success
    assert_line --index 0 --regexp '^Usage: verify-backups\.sh'
    for flag in --node --storage --vmid --full --dry-run; do
      assert_output --partial -- "$flag"
    done
    assert_equal "$stderr" ""
  done
}

@test "an unknown option: 'Option inconnue: X', non-zero" {
  run script verify-backups --bogus
  assert_failure
  assert_output --partial "Option inconnue: --bogus"
}

@test "no --force (the script has none): 'Option inconnue: --force', non-zero, nothing contacted" {
  run script verify-backups --force --dry-run
  assert_failure
  assert_output --partial "Option inconnue: --force"
  refute_output --partial "[DRY-RUN]"
}

@test "--vmid not a number: 'VMID invalide: doit etre un nombre', non-zero" {
  for v in abc 10a -- ''; do
    run script verify-backups --vmid "$v" --dry-run
    assert_failure
  done
  run script verify-backups --vmid abc --dry-run
  assert_output --partial "VMID invalide: doit etre un nombre"
}

@test "--dry-run: contacts nothing; [DRY-RUN] pvesh, ls and S3 lines for every environment's node and state; sample RAPPORT and RESUME; exit 0" {
  before=$(tree_sum)
  run --separate-stderr script verify-backups --dry-run
  assert_success
  # Each environment's default_node at the host of its proxmox_endpoint, backup storage `local`.
  for pair in pve-prod:192.0.2.10 pve-lab:192.0.2.11 pve-mon:192.0.2.12; do
    node=${pair%%:*} host=${pair#*:}
    [[ $stderr == *"[DRY-RUN] ssh root@$host pvesh get /nodes/$node/storage/local/content --content backup --output-format json"* ]]
    [[ $stderr == *"[DRY-RUN] ssh root@$host ls -la /var/lib/vz/dump/vzdump-*"* ]]
  done
  # The bucket of each environment at the MinIO block's address, versions listed, JSON checked.
  for env in prod lab monitoring; do
    [[ $stderr == *"[DRY-RUN] s3 list-object-versions s3://tfstate-$env/terraform.tfstate (endpoint http://192.0.2.20:9000)"* ]]
    [[ $stderr == *"[DRY-RUN] s3 get s3://tfstate-$env/terraform.tfstate"* ]]
  done
  # Nothing was tried: no retry, no connection error, nothing written.
  [[ $stderr != *"attempt"* ]]
  [[ $stderr != *"[ERROR]"* ]]
  assert_sample_report
  assert_line --regexp '^vzdump \| VM 100 \| OK \| [0-9-]+ [0-9:]+ \| [0-9.]+ MB$'
  assert_line --regexp '^minio \| tfstate-prod \| OK \| [0-9-]+ [0-9:]+ \| [0-9.]+ KB, 3 versions$'
  assert_equal "$(tree_sum)" "$before"
  [ ! -e "$PVE_VERIFY_MANIFEST" ]
  [ ! -e "$HOMELAB_KNOWN_HOSTS" ]
}

@test "--dry-run without a node: a warning naming each node, the vzdump part with placeholders, the sample report, exit 0" {
  for env in prod lab monitoring; do
    sed -i '/^proxmox_endpoint/d' "$ENVS/$env/terraform.tfvars"
  done
  run --separate-stderr script verify-backups --dry-run
  assert_success
  for node in pve-prod pve-lab pve-mon; do
    [[ $stderr == *"[WARN]"*"pas d'adresse pour le noeud $node"*"verification vzdump ignoree"* ]]
  done
  [[ $stderr == *"[DRY-RUN] ssh root@<noeud> pvesh get /nodes/<noeud>/storage/local/content --content backup"* ]]
  assert_sample_report
}

@test "--node: that node at its environment's endpoint; a node no environment names is its own host" {
  run --separate-stderr script verify-backups --node pve-lab --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.11 pvesh get /nodes/pve-lab/storage/local/content"* ]]
  [[ $stderr != *"pve-prod"* ]]
  run --separate-stderr script verify-backups --node pve-other --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] ssh root@pve-other pvesh get /nodes/pve-other/storage/local/content"* ]]
  assert_sample_report
}

@test "--storage: the backup storage listed (default local)" {
  run --separate-stderr script verify-backups --node pve-prod --storage backup2 --dry-run
  assert_success
  [[ $stderr == *"pvesh get /nodes/pve-prod/storage/backup2/content --content backup"* ]]
  [[ $stderr == *"ls -la <chemin de backup2>/dump/vzdump-*"* ]]
  [[ $stderr != *"/storage/local/"* ]]
}

@test "--vmid N: one guest, numeric" {
  run --separate-stderr script verify-backups --vmid 105 --full --dry-run
  assert_success
  assert_line --regexp '^vzdump \| VM 105 \| OK \|'
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.10 qm guest cmd 105 ping"* ]]
}

@test "--full --dry-run: the backup jobs and the connectivity commands on [DRY-RUN] lines, the section 'Verification de la connectivite', contacts nothing" {
  before=$(tree_sum)
  run --separate-stderr script verify-backups --full --dry-run
  assert_success
  for host in 192.0.2.10 192.0.2.11 192.0.2.12; do
    [[ $stderr == *"[DRY-RUN] ssh root@$host pvesh get /cluster/backup --output-format json"* ]]
    [[ $stderr == *"[DRY-RUN] ssh root@$host pvesh get /cluster/resources --type vm --output-format json"* ]]
    [[ $stderr == *"[DRY-RUN] ssh root@$host qm guest cmd <vmid> ping"* ]]
    [[ $stderr == *"[DRY-RUN] ssh root@$host pct exec <vmid> -- true"* ]]
  done
  [[ $stderr == *"[DRY-RUN] TF_DATA_DIR=<temp> terraform -chdir=$ENVS/prod init"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.20:9000/minio/health/live"* ]]
  assert_line "Jobs de sauvegarde"
  assert_line "Verification de la connectivite"
  assert_line --regexp '^job \| backup-<job> \| OK \|'
  assert_line --regexp '^guest \| VM 100 \| OK \|'
  assert_sample_report
  assert_equal "$(tree_sum)" "$before"
}

@test "a real run where no node and no MinIO can be reached: 'Noeud injoignable' and ERRORs, exit 2" {
  run --separate-stderr script verify-backups --node pve-prod
  assert_failure 2
  assert_line --regexp '^vzdump \| pve-prod \| ERROR \| - \| Noeud injoignable: '
  assert_line --regexp '^minio \| tfstate-prod \| ERROR \|'
  assert_line --regexp '^Erreurs: [1-9]'
}

@test "English outside the shims, French with --lang fr or a French locale; JSON the same in both" {
  run --separate-stderr binary verify-backups --dry-run --full
  assert_success
  assert_line "BACKUP VERIFICATION REPORT"
  assert_line "Connectivity check"
  assert_line "SUMMARY"
  assert_line --regexp '^Total checked: [0-9]+$'
  assert_line "Errors: 0"
  LANG=fr_FR.UTF-8 run --separate-stderr binary verify-backups --dry-run
  assert_line "RAPPORT DE VERIFICATION DES SAUVEGARDES"
  run --separate-stderr binary verify-backups --dry-run --lang fr
  assert_line "Erreurs: 0"
  run binary verify-backups --vmid x
  assert_output --partial "invalid VMID: must be a number"
  run --separate-stderr binary verify-backups --dry-run --json --full
  assert_success
  en=$(jq -S 'del(.started_at, .started_epoch, .duration_ms)' <<<"$output")
  run --separate-stderr binary verify-backups --dry-run --json --full --lang fr
  assert_success
  fr=$(jq -S 'del(.started_at, .started_epoch, .duration_ms)' <<<"$output")
  assert_equal "$fr" "$en"
  assert_equal "$(jq -r .schema <<<"$output")" "pve-verify/v1"
}

@test "usage errors keep exit 64" {
  run -64 binary verify-backups --vmid abc
  run -64 binary verify-backups --bogus
  run -64 script verify-backups --force
}
