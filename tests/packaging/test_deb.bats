#!/usr/bin/env bats
# The .deb: built with cargo-deb from the workspace's binaries, installed with dpkg into a scratch root,
# every file checked. (The package uses the debug binaries `cargo test` already built, so CI does not pay
# for a second, release build; a release package is `cargo build --release && cargo deb -p check-drift`.)

setup_file() {
  load '../common/helpers'
  command -v cargo-deb >/dev/null || { echo "cargo-deb is not installed (tests/run-all installs it)" >&2; return 1; }
  cd "$PVE_TOOLS_ROOT" || return 1
  cargo build -q --bins -p check-drift -p restore-vm -p restore-tfstate -p rebuild-minio -p rebuild-monitoring -p verify-backups
  cargo deb -q -p check-drift --profile dev --no-build -o "$BATS_FILE_TMPDIR/" 2>/dev/null
  DEB=$(ls "$BATS_FILE_TMPDIR"/pve-tools_*_amd64.deb)
  export DEB
  export SCRATCH="$BATS_FILE_TMPDIR/root"
  mkdir -p "$SCRATCH/var/lib/dpkg/info" "$SCRATCH/var/lib/dpkg/updates" "$SCRATCH/var/lib/dpkg/triggers"
  touch "$SCRATCH/var/lib/dpkg/status"
  # --force-depends: the scratch root has no libc6 or openssh-client packages registered.
  dpkg --root="$SCRATCH" --force-depends --force-script-chrootless --log=/dev/null -i "$DEB" >/dev/null 2>&1
}

setup() {
  load '../common/helpers'
}

@test "the package is pve-tools with the right metadata" {
  run dpkg-deb -f "$DEB" Package Section Depends
  assert_success
  assert_line "Package: pve-tools"
  assert_line "Section: admin"
  assert_line --regexp '^Depends: .*libc6.*openssh-client'
}

@test "dpkg registered the install in the scratch root" {
  run dpkg --root="$SCRATCH" -s pve-tools
  assert_success
  assert_line "Status: install ok installed"
}

@test "all six binaries are in /usr/bin and run" {
  for t in "${PVE_TOOLS[@]}"; do
    [ -x "$SCRATCH/usr/bin/$t" ]
    run "$SCRATCH/usr/bin/$t" --version
    assert_success
    assert_output --regexp "^$t [0-9]"
  done
}

@test "systemd units, timers and tmpfiles are installed" {
  for u in pve-drift-check.service pve-drift-check.timer pve-verify-backups.service pve-verify-backups.timer; do
    [ -f "$SCRATCH/lib/systemd/system/$u" ]
    cmp "$SCRATCH/lib/systemd/system/$u" "$PVE_TOOLS_ROOT/packaging/systemd/$u"
  done
  [ -f "$SCRATCH/usr/lib/tmpfiles.d/pve-tools.conf" ]
}

@test "/etc/default files are conffiles" {
  run dpkg-query --admindir="$SCRATCH/var/lib/dpkg" -W -f='${Conffiles}\n' pve-tools
  assert_success
  assert_output --partial "/etc/default/pve-drift-check"
  assert_output --partial "/etc/default/pve-verify-backups"
  [ -f "$SCRATCH/etc/default/pve-drift-check" ]
}

@test "alert rules, dashboards, ignore defaults and the Alertmanager example are installed" {
  for f in "$PVE_TOOLS_ROOT"/packaging/prometheus/alerts/*.yml; do
    cmp "$f" "$SCRATCH/usr/share/pve-tools/prometheus/alerts/$(basename "$f")"
  done
  promtool check rules "$SCRATCH"/usr/share/pve-tools/prometheus/alerts/*.yml >/dev/null
  for f in "$PVE_TOOLS_ROOT"/packaging/grafana/dashboards/*.json; do
    jq -e .panels "$SCRATCH/usr/share/pve-tools/grafana/dashboards/$(basename "$f")" >/dev/null
  done
  [ -f "$SCRATCH/usr/share/pve-tools/driftignore.default" ]
  [ -f "$SCRATCH/usr/share/doc/pve-tools/examples/drift-route.example.yml" ]
}

@test "man pages and bash, zsh and fish completions exist for every tool" {
  for t in "${PVE_TOOLS[@]}"; do
    run man -l "$SCRATCH/usr/share/man/man1/$t.1.gz"
    assert_success
    assert_output --partial "$t"
    [ -s "$SCRATCH/usr/share/bash-completion/completions/$t" ]
    [ -s "$SCRATCH/usr/share/zsh/vendor-completions/_$t" ]
    [ -s "$SCRATCH/usr/share/fish/vendor_completions.d/$t.fish" ]
  done
  run bash -c "source '$SCRATCH/usr/share/bash-completion/completions/check-drift' && complete -p check-drift"
  assert_success
}

@test "docs and copyright are shipped" {
  [ -f "$SCRATCH/usr/share/doc/pve-tools/copyright" ]
  [ -f "$SCRATCH/usr/share/doc/pve-tools/README.md" ]
  [ -f "$SCRATCH/usr/share/doc/pve-tools/EXIT-CODES.md" ]
}
