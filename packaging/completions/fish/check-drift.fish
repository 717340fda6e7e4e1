# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_check_drift_global_optspecs
    string join \n env= all root= install-shims= detailed-exitcode j/jobs= timeout= lock-timeout= ignore-file= terraform-bin= wait-lock lock-file= textfile-dir= report-dir= retention= alertmanager-url= state-file= y/force dry-run preview homelab= lang= json color= v/verbose q/quiet h/help V/version
end

function __fish_check_drift_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_check_drift_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_check_drift_using_subcommand
    set -l cmd (__fish_check_drift_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c check-drift -n "__fish_check_drift_needs_command" -l env -d 'Check only these environments (prod, lab, monitoring: folder names under the root), comma-separated or repeated' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l root -d 'Folder whose subfolders holding `*.tf` files are the environments [default: <homelab>/infrastructure/proxmox/environments]' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l install-shims -d 'Write the six shims (POSIX sh files at the replaced scripts\' paths under DIR: scripts/drift/check-drift.sh, scripts/restore/*.sh) that run these tools with DIR as the homelab root, in French, and exit. DIR is the homelab root' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -s j -l jobs -d 'At most this many environments at once (default: number of CPUs, capped by the number of environments)' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l timeout -d 'Give up on an environment after this long (init + plan + show), e.g. `90s`, `5m`. Terraform is interrupted first so it releases the state lock, then killed' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l lock-timeout -d 'How long Terraform waits for a held state lock (`-lock-timeout`)' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l ignore-file -d 'Ignore rules to use instead of `<root>/.driftignore` and `<env>/.driftignore`' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l terraform-bin -d 'Terraform or OpenTofu binary (default: `tofu`, else `terraform`, from PATH)' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l lock-file -d 'Run lock file (default: `pve-drift.lock` in `$RUNTIME_DIRECTORY`, else `/run/pve-tools` for root, else `$XDG_RUNTIME_DIR`; never in a folder others can write). A symlink or a file owned by another user is refused' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l textfile-dir -d 'Write Prometheus metrics to `DIR/pve_drift.prom` (atomically, mode 0644) for node_exporter\'s textfile collector, creating DIR when missing [default: /var/lib/prometheus/node-exporter, Debian\'s textfile directory]. A directory that cannot be written is an error. Empty: no metrics. Environments not checked in this run keep their series from the previous file' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l report-dir -d 'Keep per-run reports `DIR/drift-YYYY-MM-DD-<env>.log` and `.json` (mode 0640), read back by `check-drift history` [default: /var/log/pve-drift]. Empty: no reports' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l retention -d 'Remove report files (only `drift-YYYY-MM-DD-<env>.log|json`) dated more than this long ago at the end of each run, e.g. `30d`, `8w`' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l alertmanager-url -d 'Push DriftDetected / DriftCheckFailed alerts (and their resolution) to this Alertmanager (`POST /api/v2/alerts`) when an environment\'s result changes. An unreachable Alertmanager is a warning (retried with backoff), never a failed check' -r
complete -c check-drift -n "__fish_check_drift_needs_command" -l state-file -d 'State kept between runs: when drift was first seen, the last success, the alerts pushed [default: `$STATE_DIRECTORY/state.json` under systemd, else `${XDG_STATE_HOME:-~/.local/state}/pve-drift/state.json`]' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c check-drift -n "__fish_check_drift_needs_command" -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c check-drift -n "__fish_check_drift_needs_command" -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c check-drift -n "__fish_check_drift_needs_command" -l all -d 'Check every environment (wins over --env)'
complete -c check-drift -n "__fish_check_drift_needs_command" -l detailed-exitcode -d 'Exit with Terraform\'s `-detailed-exitcode` meaning instead of check-drift.sh\'s: 1 error, 2 drift'
complete -c check-drift -n "__fish_check_drift_needs_command" -l wait-lock -d 'Wait for another check-drift run to finish instead of exiting 75 at once'
complete -c check-drift -n "__fish_check_drift_needs_command" -s y -l force -l yes -d 'Non-interactive: answer yes to every confirmation. It does not loosen any safety check'
complete -c check-drift -n "__fish_check_drift_needs_command" -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c check-drift -n "__fish_check_drift_needs_command" -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c check-drift -n "__fish_check_drift_needs_command" -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c check-drift -n "__fish_check_drift_needs_command" -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c check-drift -n "__fish_check_drift_needs_command" -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c check-drift -n "__fish_check_drift_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c check-drift -n "__fish_check_drift_needs_command" -s V -l version -d 'Print version'
complete -c check-drift -n "__fish_check_drift_needs_command" -f -a "history" -d 'Show the drift history kept in --report-dir: per environment, when drift started and was resolved, and what changed between two runs (new, resolved and still drifted resources)'
complete -c check-drift -n "__fish_check_drift_needs_command" -f -a "install-timer" -d 'Install the systemd service and daily timer (pve-drift-check), /etc/default/pve-drift-check (kept when it exists) and the tmpfiles.d entry, then enable the timer. Idempotent; see --dry-run'
complete -c check-drift -n "__fish_check_drift_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l env -d 'Only these environments, comma-separated or repeated' -r
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l since -d 'Only runs from this long ago until now, e.g. `7d`' -r
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l report-dir -d 'Keep per-run reports `DIR/drift-YYYY-MM-DD-<env>.log` and `.json` (mode 0640), read back by `check-drift history` [default: /var/log/pve-drift]. Empty: no reports' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c check-drift -n "__fish_check_drift_using_subcommand history" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l unit-dir -d 'Where the unit files go' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l defaults-file -d 'The settings file the service reads (written only when missing: local edits are kept)' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l tmpfiles-dir -d 'Where the tmpfiles.d entry for the textfile and report directories goes' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l binary -d 'check-drift binary the service runs (default: this binary)' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l report-dir -d 'Keep per-run reports `DIR/drift-YYYY-MM-DD-<env>.log` and `.json` (mode 0640), read back by `check-drift history` [default: /var/log/pve-drift]. Empty: no reports' -r -F
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l no-enable -d 'Write the files only: no `systemd-tmpfiles --create`, `systemctl daemon-reload` or `systemctl enable --now pve-drift-check.timer`'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c check-drift -n "__fish_check_drift_using_subcommand install-timer" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c check-drift -n "__fish_check_drift_using_subcommand help; and not __fish_seen_subcommand_from history install-timer help" -f -a "history" -d 'Show the drift history kept in --report-dir: per environment, when drift started and was resolved, and what changed between two runs (new, resolved and still drifted resources)'
complete -c check-drift -n "__fish_check_drift_using_subcommand help; and not __fish_seen_subcommand_from history install-timer help" -f -a "install-timer" -d 'Install the systemd service and daily timer (pve-drift-check), /etc/default/pve-drift-check (kept when it exists) and the tmpfiles.d entry, then enable the timer. Idempotent; see --dry-run'
complete -c check-drift -n "__fish_check_drift_using_subcommand help; and not __fish_seen_subcommand_from history install-timer help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
