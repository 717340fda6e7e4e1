#!/usr/bin/env bats
# verify-backups.sh through its shim, end to end on the test bed (the simulated Proxmox node behind a real
# sshd on loopback, moto as MinIO), called as the TUI calls it: no argument. The node comes from the
# deployed environment's terraform.tfvars (`default_node`, host of `proxmox_endpoint`), the state from its
# `minio` block; an old backup exits 1, a missing one 2; `--full` adds the backup jobs and the section
# "Verification de la connectivite". Only prod is deployed (lab and monitoring have no tfvars), so no
# TEST-NET address of the fixture is ever dialled.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup_file() {
  load '../common/helpers'
  node_bed_up
  [[ -n ${PVE_SIM_STATE:-} ]] || {
    echo "no test bed: $TESTBED_BIN is not built (cargo build -p testbed)" >&2
    return 1
  }
  export HL="$BATS_FILE_TMPDIR/homelab" ENVS="$BATS_FILE_TMPDIR/homelab/infrastructure/proxmox/environments"
  "$TESTBED_BIN" fixture homelab "$HL" --endpoint prod=https://127.0.0.1:8006 \
    --minio "127.0.0.1:${TESTBED_S3_ENDPOINT##*:}" --without-tfvars lab --without-tfvars monitoring 2>/dev/null
  "$PVE_TOOLS_BIN/check-drift" --install-shims "$HL" -q
  # The bed's node is called `pve`; the operator's ssh settings reach it at 127.0.0.1.
  sed -i 's/^default_node .*/default_node = "pve"/' "$ENVS/prod/terraform.tfvars"
  printf 'Host 127.0.0.1\n  Port %s\n  IdentityFile %s\n' "$TESTBED_SSH_PORT" "$TESTBED_SSH_KEY" \
    >"$BATS_FILE_TMPDIR/ssh_config"
  # prod's state in MinIO: bucket tfstate-prod, versioned, key terraform.tfstate.
  local s3=$TESTBED_S3_ENDPOINT
  curl -fs -X PUT "$s3/tfstate-prod" >/dev/null
  curl -fs -X PUT "$s3/tfstate-prod?versioning" -H 'Content-Type: application/xml' \
    -d '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' >/dev/null
  curl -fs -X PUT "$s3/tfstate-prod/terraform.tfstate" -H 'Content-Type: application/json' --data-binary \
    '{"version":4,"terraform_version":"1.11.4","serial":2,"lineage":"l-1","outputs":{},"resources":[{"mode":"managed","type":"terraform_data","name":"vm","provider":"provider[\"terraform.io/builtin/terraform\"]","instances":[{"schema_version":0,"attributes":{"id":"x"}}]}]}' >/dev/null
}

teardown_file() {
  load '../common/helpers'
  node_bed_down
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  export HOME="$BATS_TEST_TMPDIR/home" PVE_RETRY_DELAY=10ms
  export PVE_SSH_CONFIG="$BATS_FILE_TMPDIR/ssh_config" PVE_SSH_USER="$TESTBED_SSH_USER"
  export HOMELAB_KNOWN_HOSTS="$TESTBED_SSH_KNOWN_HOSTS" PVE_VERIFY_MANIFEST="$BATS_TEST_TMPDIR/manifest"
  unset PVE_HOST PVE_NODE PVE_TOOLS_LANG LC_ALL LC_MESSAGES PVE_DRIFT_ROOT PVE_BACKUP_TEXTFILE_DIR MINIO_URL \
    PROMETHEUS_URL GRAFANA_URL ALERTMANAGER_URL SSH_INIT_MODE
  export LANG=C.UTF-8
  DUMP="$PVE_SIM_STATE/storage/local/dump"
}

# The shim, from a folder outside the homelab (the TUI runs it from the user's cwd).
vb() {
  (cd "$BATS_TEST_TMPDIR" && "$HL/scripts/restore/verify-backups.sh" "$@")
}

@test "no argument: the node of prod's tfvars and prod's state in MinIO, all fresh: exit 0" {
  run --separate-stderr vb
  assert_success
  assert_line --regexp '^vzdump \| VM 100 \(jellyfin\) \| OK \| [0-9-]+ [0-9:]+ \| [0-9.]+ MB$'
  assert_line --regexp '^vzdump \| CT 101 \(pihole\) \| OK \|'
  assert_line --regexp '^vzdump \| VM 102 \(monitoring\) \| OK \|'
  assert_line --regexp '^minio \| tfstate-prod \| OK \| .* KB, 1 versions$'
  assert_line "Total verifie: 4"
  assert_line "Warnings: 0"
  assert_line "Erreurs: 0"
  refute_output --partial "Verification de la connectivite"
}

@test "--full: the backup jobs, then 'Verification de la connectivite' for every running guest" {
  PVE_SIM_STATE=$PVE_SIM_STATE "$PVE_TOOLS_BIN/pve-sim" qm set 100 --agent 1 >/dev/null
  printf '%s\n' '[{"id":"backup-nightly","type":"vzdump","schedule":"21:00","storage":"local","mode":"snapshot","enabled":1,"all":1}]' \
    >"$PVE_SIM_STATE/backup-jobs.json"
  run --separate-stderr vb --full
  rm -f "$PVE_SIM_STATE/backup-jobs.json"
  # One warning: VM 102 has no QEMU guest agent, so whether it answers cannot be told.
  assert_failure 1
  assert_line "Jobs de sauvegarde"
  assert_line "backup-nightly | OK | planification 21:00, stockage local, mode snapshot, tous les guests"
  assert_line "Verification de la connectivite"
  assert_line "VM 100 (jellyfin) | OK | qm guest cmd 100 ping: repond"
  assert_line "CT 101 (pihole) | OK | pct exec 101 -- true: repond"
  assert_line "VM 102 (monitoring) | WARNING | Pas d'agent QEMU configure: connectivite non verifiable"
  assert_line --regexp '^guest \| VM 102 \(monitoring\) \| WARNING \|'
  assert_line "Warnings: 1"
  assert_line "Erreurs: 0"
  # The report's counts stay the last lines, where the TUI reads them.
  assert_equal "${lines[-1]}" "Erreurs: 0"
}

@test "an old backup: WARNING 'Sauvegarde trop ancienne', exit 1" {
  old=$(date -u -d '-3 days' +%Y_%m_%d-%H_%M_%S)
  for f in "$DUMP"/vzdump-lxc-101-*; do
    mv "$f" "$DUMP/vzdump-lxc-101-$old.${f#*-101-????_??_??-??_??_??.}"
  done
  run --separate-stderr vb
  assert_failure 1
  assert_line --regexp '^vzdump \| CT 101 \(pihole\) \| WARNING \| .*Sauvegarde trop ancienne \(7[0-9]h\)'
  assert_line "Warnings: 1"
  assert_line "Erreurs: 0"
}

@test "a missing backup: ERROR 'Aucune sauvegarde', exit 2" {
  rm "$DUMP"/vzdump-qemu-102-*
  run --separate-stderr vb
  assert_failure 2
  assert_line "vzdump | VM 102 (monitoring) | ERROR | - | Aucune sauvegarde"
  assert_line --regexp '^Erreurs: [1-9]'
}
