#!/usr/bin/env bats
# rebuild-monitoring.sh's contract (the flags, exit codes and words its callers rely on), checked
# from outside through the shim on a copy of the homelab layout (the monitoring block names the VM at
# 192.0.2.30, id 9000, node null = the monitoring environment's default_node pve-mon, whose endpoint is
# 192.0.2.12), inside `unshare -n`: neither the node nor the VM can be reached, so every dry-run that passes
# proves the tool contacted nothing. The live runs through the shim (restore and rebuild against the test
# bed) are in tests/compat/e2e.bats.

# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`

setup() {
  load '../common/helpers'
  load 'restore_helpers'
  bats_require_minimum_version 1.5.0
  homelab_up "$BATS_TEST_TMPDIR/homelab"
  export RESTORE_VM_RETRY_DELAY_MS=10 PVE_RETRY_DELAY=10ms PVE_RETRY_ATTEMPTS=2 HOME="$BATS_TEST_TMPDIR/home"
  export HOMELAB_KNOWN_HOSTS="$BATS_TEST_TMPDIR/known_hosts"
  # A terraform that leaves a trace if anything runs it.
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  printf '#!/bin/sh\necho ran >>"%s"\nexit 1\n' "$BATS_TEST_TMPDIR/terraform-ran" >"$BATS_TEST_TMPDIR/bin/terraform"
  chmod +x "$BATS_TEST_TMPDIR/bin/terraform"
  export TF_BIN="$BATS_TEST_TMPDIR/bin/terraform"
  unset PVE_HOST PVE_NODE PVE_SSH_USER PVE_SSH_CONFIG PVE_DRIFT_ROOT PVE_TOOLS_LANG LC_ALL LC_MESSAGES SSH_INIT_MODE
  unset PROMETHEUS_URL ALERTMANAGER_URL GRAFANA_URL NODE_EXPORTER_URL
  export LANG=C.UTF-8
}

# Nothing was contacted or written: no terraform run, no known host recorded, the environments unchanged.
assert_untouched() {
  [ ! -e "$BATS_TEST_TMPDIR/terraform-ran" ]
  [ ! -e "$HOMELAB_KNOWN_HOSTS" ]
  assert_equal "$(tree_sum)" "$1"
}

@test "-h/--help anywhere: usage on stdout starting 'Usage: rebuild-monitoring.sh', naming every flag, exit 0" {
  for args in -h --help "--mode rebuild -h" "--dry-run --help"; do
    # shellcheck disable=SC2086 # split on purpose
    run --separate-stderr script rebuild-monitoring $args
    assert_success
    assert_line --index 0 --regexp '^Usage: rebuild-monitoring\.sh'
    for flag in --mode --node --vmid --dry-run --force; do
      assert_output --partial -- "$flag"
    done
    assert_output --partial "restore"
    assert_output --partial "rebuild"
  done
}

@test "an unknown option: 'Option inconnue: X', non-zero" {
  run script rebuild-monitoring --bogus
  assert_failure
  assert_output --partial "Option inconnue: --bogus"
}

@test "--mode other than restore|rebuild: 'Mode invalide', non-zero, nothing contacted" {
  before=$(tree_sum)
  for mode in bogus RESTORE ""; do
    run script rebuild-monitoring --mode "$mode" --dry-run
    assert_failure
    assert_output --partial "Mode invalide"
  done
  assert_untouched "$before"
}

@test "--dry-run (mode restore by default): contacts nothing, [DRY-RUN] lines with the monitoring block's VM, the health URLs and docker ps, the summary, exit 0" {
  before=$(tree_sum)
  run --separate-stderr script rebuild-monitoring --dry-run
  assert_success
  # restore = restore-vm of the monitoring VM's newest backup, on the node of the monitoring block.
  [[ $stderr == *"[DRY-RUN] restore-vm 9000 --node pve-mon (backup <newest backup>)"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.12 pvesh get /nodes/pve-mon/storage/<storage>/content --content backup --vmid 9000"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.12 qmrestore <newest backup> 9000 --force"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.12 qm start 9000"* ]]
  # Then the health URLs (Prometheus and Alertmanager: readiness, stricter than /-/healthy; Prometheus's
  # targets and rules, node_exporter's textfile series) and docker ps over SSH on root@<monitoring.vm.ip>.
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9090/-/ready"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9090/api/v1/targets"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9090/api/v1/rules"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:3000/api/health"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9093/-/ready"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9100/metrics"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.30 docker ps --all --format '{{.Names}}\t{{.Status}}'"* ]]
  [[ $stderr != *"attempt"* ]]
  [[ $stderr != *"[OK]"* ]]
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  assert_line "  Mode: restore"
  assert_output --partial "rien n'a ete contacte ni modifie"
  refute_output --partial "OK"
  assert_untouched "$before"
}

@test "--mode rebuild --dry-run: the targeted apply in the monitoring environment, health URLs, docker ps; nothing run" {
  before=$(tree_sum)
  run --separate-stderr script rebuild-monitoring --mode rebuild --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] terraform -chdir=$ENVS/monitoring apply -target=module.monitoring_stack -auto-approve"* ]]
  [[ $stderr == *"[DRY-RUN] GET http://192.0.2.30:9090/-/ready"* ]]
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.30 docker ps "* ]]
  [[ $stderr != *"qmrestore"* ]]
  assert_line "  Mode: rebuild"
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  [ ! -e "$ENVS/monitoring/.terraform" ]
  assert_untouched "$before"
}

@test "--node and --vmid name the node and the VM restored; --force is accepted (a dry-run still contacts nothing)" {
  before=$(tree_sum)
  run --separate-stderr script rebuild-monitoring --mode restore --node pve-other --vmid 9100 --force --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] restore-vm 9100 --node pve-other "* ]]
  [[ $stderr == *"pvesh get /nodes/pve-other/storage/<storage>/content --content backup --vmid 9100"* ]]
  [[ $stderr == *"qmrestore <newest backup> 9100 --force"* ]]
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  assert_untouched "$before"
}

@test "a failure exits 1: the node cannot be reached (no route), and no summary says OK" {
  run --separate-stderr script rebuild-monitoring --mode restore --force --deadline 1s
  assert_failure 1
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
  assert_line --partial "Resultat: ECHEC"
}

@test "English outside the shims, French with --lang fr or a French locale" {
  run --separate-stderr binary rebuild-monitoring --dry-run
  assert_success
  assert_line "REBUILD SUMMARY - Monitoring"
  [[ $stderr == *"[DRY-RUN] ssh root@192.0.2.30 docker ps "* ]]
  run binary rebuild-monitoring --mode bogus
  assert_failure
  assert_output --partial "invalid mode: bogus"
  LANG=fr_FR.UTF-8 run binary rebuild-monitoring --mode bogus
  assert_output --partial "Mode invalide: bogus"
  run --separate-stderr binary rebuild-monitoring --dry-run --lang fr
  assert_line "RESUME DE RECONSTRUCTION - Monitoring"
}

@test "usage errors keep exit 64" {
  run -64 binary rebuild-monitoring --bogus
  run -64 binary rebuild-monitoring --mode bogus
  run -64 binary rebuild-monitoring --vmid abc
}
