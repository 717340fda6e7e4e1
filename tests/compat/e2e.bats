#!/usr/bin/env bats
# End to end through the shims, as the homelab's callers run the scripts: the shims installed by
# `check-drift --install-shims` in a homelab laid out by `testbed fixture homelab`, run from / against the live
# test bed (`testbed up`: the simulated Proxmox node and the monitoring VM behind real sshds, moto as MinIO,
# the real Prometheus, Alertmanager and node_exporter, real Terraform). Every address of this homelab is on
# loopback: the environments' proxmox_endpoint is the node (127.0.0.1, ssh_config gives the bed's port), the
# monitoring VM is 127.0.0.2 (ssh_config sends it to its own sshd), MinIO is moto's port. The bed is stopped
# in teardown_file.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup_file() {
  load '../common/helpers'
  : "${TESTBED_BIN:=$PVE_TOOLS_BIN/testbed}"
  [[ -x $TESTBED_BIN ]] || {
    echo "no test bed: $TESTBED_BIN is not built (cargo build -p testbed --bins)" >&2
    return 1
  }
  export TESTBED_BIN BED_DIR="$BATS_FILE_TMPDIR/bed"
  eval "$("$TESTBED_BIN" up --dir "$BED_DIR")"
  # The tools get the S3 endpoint from the MinIO block, as in the homelab; the bed's own variable would win.
  unset AWS_ENDPOINT_URL_S3
  local moto_port=${TESTBED_S3_ENDPOINT##*:}
  export MOTO="http://127.0.0.1:$moto_port"
  export HL="$BATS_FILE_TMPDIR/homelab"
  "$TESTBED_BIN" fixture homelab "$HL" \
    --endpoint prod=https://127.0.0.1:8006 --endpoint lab=https://127.0.0.1:8006 \
    --endpoint monitoring=https://127.0.0.1:8006 --default-node monitoring=pve \
    --monitoring-ip 127.0.0.2 --monitoring-vmid 102 --minio "127.0.0.1:$moto_port" 2>/dev/null
  "$PVE_TOOLS_BIN/check-drift" --install-shims "$HL" -q
  export ENVS="$HL/infrastructure/proxmox/environments"
  # The monitoring environment deploys the stack as the homelab does: module.monitoring_stack.
  mkdir -p "$ENVS/monitoring/modules/monitoring_stack"
  cat >"$ENVS/monitoring/modules/monitoring_stack/main.tf" <<'TF'
variable "vm" {
  type = any
}

resource "terraform_data" "vm" {
  input = var.vm
}
TF
  cat >>"$ENVS/monitoring/main.tf" <<'TF'

module "monitoring_stack" {
  source = "./modules/monitoring_stack"
  vm     = var.monitoring.vm
}
TF
  # SSH as the homelab has it: the node and the VM by address, host keys in HOMELAB_KNOWN_HOSTS.
  local node_key node_port
  node_port=$TESTBED_SSH_PORT
  node_key=$TESTBED_SSH_KEY
  export PVE_SSH_CONFIG="$BATS_FILE_TMPDIR/ssh_config"
  cat >"$PVE_SSH_CONFIG" <<EOF
Host 127.0.0.1
  Port $node_port
  IdentityFile $node_key
  IdentitiesOnly yes
Host 127.0.0.2
  HostName 127.0.0.1
  Port $TESTBED_VM_SSH_PORT
  IdentityFile $TESTBED_VM_SSH_KEY
  IdentitiesOnly yes
EOF
  export HOMELAB_KNOWN_HOSTS="$BATS_FILE_TMPDIR/homelab_known_hosts"
  cat "$TESTBED_SSH_KNOWN_HOSTS" "$TESTBED_VM_SSH_KNOWN_HOSTS" >"$HOMELAB_KNOWN_HOSTS"
}

teardown_file() {
  if [[ -x ${TESTBED_BIN:-} && -d ${BED_DIR:-} ]]; then
    "$TESTBED_BIN" down --dir "$BED_DIR" >/dev/null 2>&1 || true
  fi
}

setup() {
  load '../common/helpers'
  bats_require_minimum_version 1.5.0
  export HOME="$BATS_TEST_TMPDIR/home" RESTORE_VM_RETRY_DELAY_MS=10 PVE_RETRY_DELAY=10ms
  export PVE_TFSTATE_BACKUP_DIR="$BATS_TEST_TMPDIR/tfstate-backups"
  mkdir -p "$HOME"
  unset PVE_HOST PVE_NODE PVE_SSH_USER PVE_TFVARS PVE_DRIFT_ROOT PVE_HOMELAB PVE_TOOLS_LANG LC_ALL LC_MESSAGES
  unset SSH_INIT_MODE SSH_AUTH_SOCK
  export LANG=C.UTF-8
}

# shim NAME ARGS...: the shim scripts/restore/NAME.sh, run from / as the TUI would run the script.
shim() {
  local name=$1
  shift
  (cd / && "$HL/scripts/restore/$name.sh" "$@")
}

# journal: the state-changing commands the simulated node ran, one `argv` per line.
journal() {
  jq -r '.argv | join(" ")' "$PVE_SIM_STATE/journal.jsonl" 2>/dev/null || true
}

docker_vm() {
  DOCKER_SIM_STATE=$TESTBED_DOCKER_STATE "$PVE_TOOLS_BIN/docker-sim" "$@"
}

@test "restore-vm.sh VMID --node --date --target-id --force: the backup of that day restored to the new id, started" {
  before=$(journal | wc -l)
  day=$(date -u -d '2 days ago' +%F)
  run --separate-stderr shim restore-vm 100 --node pve --date "$day" --target-id 9100 --force
  assert_success
  # The node's address is the endpoint of the environment whose default_node is pve (127.0.0.1).
  assert_line --index 0 "RESUME DE RESTAURATION"
  run journal
  new=$(tail -n +"$((before + 1))" <<<"$output")
  [[ $new == *"qmrestore local:backup/vzdump-qemu-100-"*" 9100 "* ]]
  [[ $new == *"qm start 9100"* ]]
  [[ $new != *"vzdump 9100"* ]] # a free id: nothing to save first
  run jq -r .status "$PVE_SIM_STATE/guests/9100.json"
  assert_output running
  # The original is untouched.
  run jq -r .status "$PVE_SIM_STATE/guests/100.json"
  assert_output running
}

@test "restore-vm.sh --date after the newest backup: no backup to restore, exit 1, nothing restored" {
  before=$(journal | wc -l)
  run shim restore-vm 100 --node pve --date "$(date -u -d 'tomorrow' +%F)" --target-id 9101 --force
  assert_failure 1
  assert_equal "$(journal | wc -l)" "$before"
  [ ! -e "$PVE_SIM_STATE/guests/9101.json" ]
}

@test "restore-tfstate.sh --fallback then --return with the MinIO block only (backend s3 block commented out)" {
  local state='{"version":4,"terraform_version":"1.11.4","serial":7,"lineage":"prod-e2e-lineage","outputs":{},"resources":[]}'
  curl -fs -X PUT "$MOTO/tfstate-prod" >/dev/null
  curl -fs -X PUT "$MOTO/tfstate-prod?versioning" -H 'Content-Type: application/xml' \
    -d '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' >/dev/null
  curl -fs -X PUT "$MOTO/tfstate-prod/terraform.tfstate" -H 'Content-Type: application/json' --data-binary "$state" >/dev/null
  backend_before=$(cat "$ENVS/prod/backend.tf")
  grep -q '^# *backend "s3"' "$ENVS/prod/backend.tf"

  run --separate-stderr shim restore-tfstate --env prod --fallback --force
  assert_success
  [[ $stderr == *"Operation terminee avec succes"* ]]
  assert_equal "$(cat "$ENVS/prod/backend.tf.minio-backup")" "$backend_before"
  grep -q 'backend "local"' "$ENVS/prod/backend.tf"
  run jq -r .lineage "$ENVS/prod/terraform.tfstate"
  assert_output prod-e2e-lineage
  # Terraform really works on the local state now: a change while MinIO is down lands there.
  printf '\noutput "e2e" {\n  value = "during the fallback"\n}\n' >>"$ENVS/prod/main.tf"
  run terraform -chdir="$ENVS/prod" apply -auto-approve -input=false -no-color
  assert_success
  run jq -r '.serial > 7, .outputs.e2e.value' "$ENVS/prod/terraform.tfstate"
  assert_output $'true\nduring the fallback'

  # MinIO's /minio/health/live does not answer yet: --return refuses, backend.tf stays local.
  run --separate-stderr shim restore-tfstate --env prod --return --force
  assert_failure 1
  grep -q 'backend "local"' "$ENVS/prod/backend.tf"
  [ -f "$ENVS/prod/backend.tf.minio-backup" ]

  # A live MinIO answers 200 there without credentials: a public object stands in on moto.
  curl -fs -X PUT "$MOTO/minio" >/dev/null
  curl -fs -X PUT -H 'x-amz-acl: public-read' --data-binary '' "$MOTO/minio/health/live" >/dev/null
  run --separate-stderr shim restore-tfstate --env prod --return --force
  assert_success
  [[ $stderr == *"Operation terminee avec succes"* ]]
  assert_equal "$(cat "$ENVS/prod/backend.tf")" "$backend_before"
  [ ! -e "$ENVS/prod/backend.tf.minio-backup" ]
  run --separate-stderr shim restore-tfstate --env prod --list
  assert_success
  assert_line --index 0 "Versions disponibles:"
  # The local state, changed while MinIO was down, is the new current version, in the same lineage.
  run --separate-stderr shim restore-tfstate --env prod --list --details --json
  assert_success
  assert_equal "$(jq -r '[.versions[] | select(.is_latest)][0].details | "\(.serial) \(.lineage)"' <<<"$output")" \
    "$(jq -r '"\(.serial) \(.lineage)"' "$ENVS/prod/terraform.tfstate")"
  assert_equal "$(jq -r '.versions | length' <<<"$output")" 2
}

@test "rebuild-monitoring.sh --mode restore --force: the monitoring VM's newest backup restored, health URLs and docker ps checked, exit 0" {
  before=$(journal | wc -l)
  run --separate-stderr shim rebuild-monitoring --mode restore --force --deadline 60s --json
  assert_success
  assert_equal "$(jq -r '.outcome, .rebuild.method, .containers.host, .containers.ok, (.checks | map(.ok) | all)' <<<"$output")" \
    $'ok\nfrom_backup\nroot@127.0.0.2\ntrue\ntrue'
  assert_equal "$(jq -r '.containers.containers[] | "\(.name) \(.status)"' <<<"$output")" \
    $'prometheus Up 2 hours\ngrafana Up 2 hours (healthy)\nalertmanager Up 2 hours'
  # VM 102 of the monitoring block, on its node (null = the environment's default_node), save point first.
  run journal
  new=$(tail -n +"$((before + 1))" <<<"$output")
  [[ $new == *"vzdump 102 "* ]]
  [[ $new == *"qmrestore local:backup/vzdump-qemu-102-"*" 102 "* ]]
  [[ $new == *"qm start 102"* ]]
  run --separate-stderr shim rebuild-monitoring --mode restore --force --deadline 60s
  assert_success
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  assert_line "  docker ps: OK"
  assert_line "  Resultat: OK"
  [[ $stderr == *"container alertmanager: Up 2 hours"* ]]
}

@test "rebuild-monitoring.sh --mode rebuild without --force and without a terminal: end of input is no, nothing applied" {
  run setsid -w "$HL/scripts/restore/rebuild-monitoring.sh" --mode rebuild </dev/null
  assert_failure 1
  [ ! -e "$ENVS/monitoring/terraform.tfstate" ] || ! grep -q monitoring_stack "$ENVS/monitoring/terraform.tfstate"
}

@test "rebuild-monitoring.sh --mode rebuild --force: terraform apply -target=module.monitoring_stack, then the checks, exit 0" {
  run --separate-stderr shim rebuild-monitoring --mode rebuild --force --deadline 60s
  assert_success
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  assert_line "  Resultat: OK"
  assert_line "  docker ps: OK"
  run jq -r '.resources[] | "\(.module).\(.type).\(.name)"' "$ENVS/monitoring/terraform.tfstate"
  assert_output "module.monitoring_stack.terraform_data.vm"
  run jq -r '.resources[0].instances[0].attributes.input.value.ip' "$ENVS/monitoring/terraform.tfstate"
  assert_output "127.0.0.2"
}

@test "rebuild-monitoring.sh: a stopped container fails the run (exit 1), named with its status" {
  docker_vm stop alertmanager
  run --separate-stderr shim rebuild-monitoring --mode rebuild --force --deadline 60s
  docker_vm start alertmanager
  assert_failure 1
  [[ $stderr == *"container alertmanager: not up (Exited (0) "*" ago)"* ]]
  assert_line --regexp '^docker +alertmanager +FAILED +Exited \(0\)'
  assert_line "  docker ps: ECHEC"
  assert_line "  Resultat: ECHEC"
}
