#!/usr/bin/env bats
# check-drift.sh's contract, line by line, through the shim at scripts/drift/check-drift.sh of a homelab
# fixture (prod, lab, monitoring; TEST-NET addresses; environments that plan offline), run from / inside
# `unshare -n`. The last test runs the systemd unit's command line under its sandbox settings.
# shellcheck disable=SC2154 # $stderr is set by `run --separate-stderr`
# shellcheck disable=SC2030,SC2031 # each test's exports are its own, on purpose

bats_require_minimum_version 1.5.0

setup() {
  load helpers
  # Missing pieces fail the suite: a skipped contract test proves nothing.
  [[ -x $TESTBED_BIN ]] || fail "no test bed: $TESTBED_BIN is not built (cargo build -p testbed)"
  command -v terraform >/dev/null || fail "terraform is not on PATH"
}

shim() {
  offline "$HOMELAB/scripts/drift/check-drift.sh" "$@"
}

@test "check-drift.sh -h/--help anywhere: usage on stdout starting 'Usage: check-drift.sh', every flag, exit 0" {
  compat_homelab
  for args in "--help" "-h" "--all --help" "--bogus --help"; do
    # shellcheck disable=SC2086 # several words on purpose
    run --separate-stderr shim $args
    assert_success
    [[ ${lines[0]} == "Usage: check-drift.sh"* ]] || fail "first line: ${lines[0]}"
    for flag in --env --all --dry-run --force --help; do
      assert_output --partial -- "$flag"
    done
  done
}

@test "check-drift.sh: unknown option: 'Option inconnue: X', non-zero" {
  compat_homelab
  run shim --all --bogus
  assert_failure 64
  assert_output --partial "Option inconnue: --bogus"
}

@test "check-drift.sh: neither --env nor --all: 'Specifiez --env ENV ou --all', non-zero (English too)" {
  compat_homelab
  run shim
  assert_failure
  assert_output --partial "Specifiez --env ENV ou --all"
  PVE_TOOLS_LANG=en run shim
  assert_failure
  assert_output --partial "Specify --env ENV or --all"
}

@test "check-drift.sh: invalid env: 'Environnement invalide: X (valides: prod lab monitoring)'" {
  compat_homelab
  run shim --env staging
  assert_failure
  assert_output --partial "Environnement invalide: staging (valides: prod lab monitoring)"
}

@test "check-drift.sh: all in sync: exit 0, French progress, '[env] Conforme - aucun drift detecte', summary" {
  compat_homelab
  run --separate-stderr shim --all
  assert_success
  [[ $stderr == *"[INFO] Detection de drift infrastructure"* ]] || fail "$stderr"
  [[ $stderr == *"Verification du drift pour l'environnement: prod"* ]] || fail "$stderr"
  [[ $stderr == *"[prod] Conforme - aucun drift detecte"* ]] || fail "$stderr"
  assert_output --partial "Resume de la detection de drift"
  assert_line --regexp "^Environnement +Statut +Details$"
  assert_line --regexp "^prod +Conforme +Aucun drift$"
}

@test "check-drift.sh: drift in one env and no error: exit 1, 'DRIFT DETECTE - N ressource(s) changee(s)', DRIFT row" {
  compat_homelab --drift lab
  run --separate-stderr shim --all --force
  assert_failure 1
  [[ $stderr == *"[WARN] [lab] DRIFT DETECTE - 1 ressource(s) changee(s)"* ]] || fail "$stderr"
  assert_line --regexp "^lab +DRIFT +1 ressource\(s\)$"
  assert_line --regexp "^monitoring +Conforme +Aucun drift$"
}

@test "check-drift.sh: an error in one env: exit 2, ERREUR row" {
  compat_homelab --drift lab --error monitoring
  run --separate-stderr shim --all
  assert_failure 2
  [[ $stderr == *"[ERROR] [monitoring] ERREUR"* ]] || fail "$stderr"
  assert_line --regexp "^monitoring +ERREUR"
}

@test "check-drift.sh --detailed-exitcode: Terraform's meaning, 2 drift, 1 error" {
  compat_homelab --drift lab
  run shim --all --detailed-exitcode
  assert_failure 2
  "$TESTBED_BIN" fixture homelab "$HOMELAB" --error prod 2>/dev/null
  run shim --all --detailed-exitcode
  assert_failure 1
}

@test "check-drift.sh --env X --all: --all wins" {
  compat_homelab --drift lab
  run --separate-stderr shim --env prod --all
  assert_failure 1
  for env in prod lab monitoring; do
    [[ $stderr == *"pour l'environnement: $env"* ]] || fail "$env not checked: $stderr"
  done
}

@test "check-drift.sh: an env without terraform.tfvars is skipped with a warning and counts as success" {
  compat_homelab --drift lab --without-tfvars lab
  run --separate-stderr shim --all
  assert_success
  [[ $stderr == *"[WARN] [lab]"*"terraform.tfvars"* ]] || fail "$stderr"
  [[ $stderr != *"pour l'environnement: lab"* ]] || fail "lab was checked: $stderr"
}

@test "check-drift.sh: metrics per env, other envs' lines kept, no temp file left" {
  compat_homelab --drift lab
  run shim --all
  assert_failure 1
  prom="$PVE_DRIFT_TEXTFILE_DIR/pve_drift.prom"
  run cat "$prom"
  assert_line 'pve_drift_status{env="lab"} 1'
  assert_line 'pve_drift_status{env="prod"} 0'
  assert_line 'pve_drift_resources_changed{env="lab"} 1'
  assert_line --regexp '^pve_drift_last_check_timestamp\{env="prod"\} [0-9]+$'
  run shim --env prod
  assert_success
  run cat "$prom"
  assert_line 'pve_drift_status{env="lab"} 1'
  if command -v promtool >/dev/null; then promtool check metrics <"$prom"; fi
  run find "$PVE_DRIFT_TEXTFILE_DIR" -name '*.tmp'
  assert_output ""
}

@test "check-drift.sh: the textfile directory is created when missing; one that cannot be written is an error" {
  compat_homelab
  export PVE_DRIFT_TEXTFILE_DIR="$BATS_TEST_TMPDIR/new/textfile"
  run shim --all
  assert_success
  [[ -f $PVE_DRIFT_TEXTFILE_DIR/pve_drift.prom ]]
  : >"$BATS_TEST_TMPDIR/a-file"
  export PVE_DRIFT_TEXTFILE_DIR="$BATS_TEST_TMPDIR/a-file/textfile"
  run --separate-stderr shim --all
  assert_failure 2
  [[ $stderr == *"[ERROR]"*"metrics"* ]] || fail "$stderr"
}

@test "check-drift.sh: drift log per env and day: drift-YYYY-MM-DD-<env>.log" {
  compat_homelab --drift lab
  run shim --all
  assert_failure 1
  [[ -f $PVE_DRIFT_REPORT_DIR/drift-$(date -u +%F)-lab.log || -f $PVE_DRIFT_REPORT_DIR/drift-$(date +%F)-lab.log ]]
}

@test "check-drift.sh --dry-run: contacts nothing (no terraform), [DRY-RUN] init and plan, summary, exit 0, no metrics" {
  compat_homelab --drift lab
  mkdir -p "$BATS_TEST_TMPDIR/bin"
  printf '#!/bin/sh\necho "$@" >>%s/terraform-calls\nexit 1\n' "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/bin/terraform"
  chmod +x "$BATS_TEST_TMPDIR/bin/terraform"
  PATH="$BATS_TEST_TMPDIR/bin:$PATH" run --separate-stderr shim --all --dry-run
  assert_success
  [[ ! -e $BATS_TEST_TMPDIR/terraform-calls ]] || fail "terraform ran: $(cat "$BATS_TEST_TMPDIR/terraform-calls")"
  [[ $stderr == *"[DRY-RUN] "*"terraform init"* ]] || fail "$stderr"
  [[ $stderr == *"[DRY-RUN] "*"terraform plan"*"-detailed-exitcode"* ]] || fail "$stderr"
  assert_line --regexp "^lab +Conforme +dry-run$"
  [[ ! -e $PVE_DRIFT_TEXTFILE_DIR ]] || fail "metrics written in dry-run"
  [[ ! -e $PVE_DRIFT_REPORT_DIR ]] || fail "reports written in dry-run"
}

@test "check-drift.sh: default paths: /var/lib/prometheus/node-exporter/pve_drift.prom and /var/log/pve-drift (seen in --dry-run)" {
  compat_homelab
  unset PVE_DRIFT_TEXTFILE_DIR PVE_DRIFT_REPORT_DIR
  run --separate-stderr shim --all --dry-run
  assert_success
  [[ $stderr == *"[DRY-RUN] write: /var/lib/prometheus/node-exporter/pve_drift.prom"* ]] || fail "$stderr"
  [[ $stderr == *"/var/log/pve-drift/drift-"*"-<env>.log"* ]] || fail "$stderr"
}

@test "check-drift: English when asked (PVE_TOOLS_LANG=en), French from the locale (LANG=fr_FR.UTF-8) without the shim" {
  compat_homelab --drift lab
  PVE_TOOLS_LANG=en run --separate-stderr shim --all
  assert_failure 1
  [[ $stderr == *"lab: drift:"* ]] || fail "$stderr"
  assert_line --regexp "^ENV +STATUS"
  LANG=fr_FR.UTF-8 run --separate-stderr offline "$PVE_TOOLS_BIN/check-drift" --homelab "$HOMELAB" --all
  assert_failure 1
  [[ $stderr == *"DRIFT DETECTE"* ]] || fail "$stderr"
}

# The unit: root, ProtectSystem=strict, ProtectHome=true, ReadWritePaths=/var/log/pve-drift
# /var/lib/prometheus/node-exporter, ExecStart=.../check-drift.sh --all --force. Without systemd as PID 1 the
# sandbox is rebuilt in a private mount namespace: the two ReadWritePaths are fresh tmpfs folders (so nothing
# reaches the real /var), every other mount is read-only, /root and /home are empty and read-only, and the
# network namespace has no route. The homelab stays writable: Terraform writes its lock and .terraform there
# (a real unit needs it in ReadWritePaths too).
@test "unit: check-drift.sh --all --force under ProtectSystem=strict/ProtectHome/ReadWritePaths writes pve_drift.prom and exits 1 on drift" {
  compat_homelab --drift lab
  unset PVE_DRIFT_TEXTFILE_DIR PVE_DRIFT_REPORT_DIR PVE_DRIFT_STATE_FILE PVE_DRIFT_LOCK_FILE
  # shellcheck disable=SC2016 # expanded by the inner shell
  run unshare -m -n --propagation private sh -euc '
    h=$1
    mount -t tmpfs tmpfs /var/lib
    mount -t tmpfs tmpfs /var/log
    mkdir -p /var/lib/prometheus/node-exporter /var/log/pve-drift
    for d in /var/lib/prometheus/node-exporter /var/log/pve-drift "$h"; do mount --bind "$d" "$d"; done
    findmnt -rn -o TARGET | while read -r m; do
      case $m in /proc*|/sys*|/dev*|/var/lib/prometheus/node-exporter|/var/log/pve-drift|"$h") continue ;; esac
      mount -o remount,bind,ro "$m" 2>/dev/null || true
    done
    for d in /root /home; do [ -d "$d" ] && mount -t tmpfs -o ro tmpfs "$d"; done
    if touch /etc/pve-tools-sandbox-probe 2>/dev/null; then echo "sandbox not read-only"; exit 99; fi
    cd /
    rc=0
    "$h/scripts/drift/check-drift.sh" --all --force || rc=$?
    echo "exit=$rc"
    cat /var/lib/prometheus/node-exporter/pve_drift.prom
    ls /var/log/pve-drift
  ' sh "$HOMELAB"
  assert_line "exit=1"
  assert_line 'pve_drift_status{env="lab"} 1'
  assert_line 'pve_drift_status{env="prod"} 0'
  assert_line "drift-$(date +%F)-lab.log"
}
