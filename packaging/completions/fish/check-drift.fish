complete -c check-drift -l env -d 'Check only these environments (folder names under --root), comma-separated or repeated' -r
complete -c check-drift -l root -d 'Folder whose subfolders holding `*.tf` files are the environments' -r -F
complete -c check-drift -s j -l jobs -d 'At most this many environments at once (default: number of CPUs, capped by the number of environments)' -r
complete -c check-drift -l timeout -d 'Give up on an environment after this long (init + plan + show), e.g. `90s`, `5m`. Terraform is interrupted first so it releases the state lock, then killed' -r
complete -c check-drift -l lock-timeout -d 'How long Terraform waits for a held state lock (`-lock-timeout`)' -r
complete -c check-drift -l ignore-file -d 'Ignore rules to use instead of `<root>/.driftignore` and `<env>/.driftignore`' -r -F
complete -c check-drift -l terraform-bin -d 'Terraform or OpenTofu binary (default: `tofu`, else `terraform`, from PATH)' -r -F
complete -c check-drift -l lock-file -d 'Run lock file (default: `/run/lock/pve-drift.lock`, or `$XDG_RUNTIME_DIR/pve-drift.lock` when /run/lock is not writable)' -r -F
complete -c check-drift -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c check-drift -l all -d 'Check every environment under --root (the default when --env is not given)'
complete -c check-drift -l wait-lock -d 'Wait for another check-drift run to finish instead of exiting 75 at once'
complete -c check-drift -l dry-run -d 'Show every command and write this run would make, on stderr, and change nothing. Read-only queries still run'
complete -c check-drift -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c check-drift -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c check-drift -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c check-drift -s h -l help -d 'Print help (see more with \'--help\')'
complete -c check-drift -s V -l version -d 'Print version'
