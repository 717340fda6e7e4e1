complete -c restore-vm -l backup -d 'Restore this backup volume (as listed by --list, e.g. local:backup/vzdump-qemu-100-....vma.zst)' -r
complete -c restore-vm -l date -d 'Restore the oldest backup taken on or after this day (node-local time), YYYY-MM-DD' -r
complete -c restore-vm -l at -d 'Restore the newest backup taken at or before this node-local time: YYYY-MM-DD (end of that day) or YYYY-MM-DDTHH:MM' -r
complete -c restore-vm -l target-id -d 'Restore under this guest id instead of VMID (100 to 999999999)' -r
complete -c restore-vm -l storage -d 'The backup storage searched for VMID\'s backups' -r
complete -c restore-vm -l target-storage -d 'Storage for the restored disks (always passed to qmrestore/pct restore; Proxmox\'s default `local` is rarely right)' -r
complete -c restore-vm -l save-storage -d 'Backup storage for the save point (default: the chosen backup\'s storage when it is a file storage, else the first active storage holding backups)' -r
complete -c restore-vm -l env -d 'With no --node: look for VMID only on the node of this environment (and the members of its cluster), even when another environment\'s node also has it' -r
complete -c restore-vm -l node -d 'The Proxmox node name (else PVE_NODE, else tfvars `node_name`, else the only node of the host)' -r
complete -c restore-vm -l host -d 'The Proxmox host to SSH to (else PVE_HOST, else the host of tfvars `proxmox_endpoint`)' -r
complete -c restore-vm -l user -d 'The SSH user (else PVE_SSH_USER, else tfvars `ssh_user`, else ssh_config or `root`)' -r
complete -c restore-vm -l port -d 'The SSH port (else ssh_config, else 22)' -r
complete -c restore-vm -l ssh-config -d 'The ssh_config file to read (default ~/.ssh/config)' -r -F
complete -c restore-vm -l identity -d 'An SSH identity (private key) file to try after the agent' -r -F
complete -c restore-vm -l known-hosts -d 'The known_hosts file the node\'s host key is checked against (else ssh_config\'s UserKnownHostsFile, else ~/.ssh/known_hosts)' -r -F
complete -c restore-vm -l tfvars -d 'The Terraform variable file to read settings from (default: the homelab\'s own, as each tool\'s help says)' -r -F
complete -c restore-vm -l verify-timeout -d 'Seconds to wait for the restored guest to run and answer' -r
complete -c restore-vm -l verify-port -d 'The TCP port checked on the restored guest\'s IP' -r
complete -c restore-vm -l shutdown-timeout -d 'Seconds a running target gets to shut down cleanly before it is stopped' -r
complete -c restore-vm -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c restore-vm -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c restore-vm -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c restore-vm -l list -d 'List the backups of VMID on the searched storage(s), newest first, and exit (with no node given, on every node of the homelab that has any, each with its node and environment)'
complete -c restore-vm -l latest -d 'Restore the newest backup (the default)'
complete -c restore-vm -l all-storages -d 'Search every backup storage of the node instead of --storage'
complete -c restore-vm -l start -d 'Start the guest after the restore (the default, so that the check that it runs means something)'
complete -c restore-vm -l no-start -d 'Leave the restored guest stopped (unless the old guest was running); the check is then skipped'
complete -c restore-vm -l unique -d 'Give the restored guest new MAC addresses (qmrestore/pct restore --unique 1)'
complete -c restore-vm -l no-verify -d 'Skip the check that the restored guest runs and answers'
complete -c restore-vm -s y -l force -l yes -d 'Non-interactive: answer yes to every confirmation. It does not loosen any safety check'
complete -c restore-vm -l allow-overwrite -d 'Accepted for callers of earlier versions, where it allowed overwriting: overwriting is now asked for (or answered by --force)'
complete -c restore-vm -l accept-new-host-key -d 'Record the node\'s host key when known_hosts has none for it (a changed key is always refused)'
complete -c restore-vm -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c restore-vm -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c restore-vm -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c restore-vm -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c restore-vm -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c restore-vm -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restore-vm -s V -l version -d 'Print version'
