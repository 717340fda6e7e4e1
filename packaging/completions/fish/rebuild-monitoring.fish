complete -c rebuild-monitoring -l mode -d '`restore` (the default): restore-vm of the monitoring VM\'s newest backup; `rebuild`: `terraform apply -target=module.monitoring_stack -auto-approve` in the monitoring environment; `auto`: restore when a backup younger than --max-age exists, else rebuild' -r
complete -c rebuild-monitoring -l from-backup -d 'Restore the monitoring VM from a backup (the newest younger than --max-age, or VOLID) as restore-vm does (a save point of the VM first when it exists), start it, verify' -r
complete -c rebuild-monitoring -l vmid -d 'The monitoring VM\'s id (for --from-backup; default: vmid of the monitoring VM in terraform.tfvars, monitoring_vmid)' -r
complete -c rebuild-monitoring -l max-age -d 'With no mode flag: --from-backup is chosen when a backup younger than this exists. --from-backup without VOLID refuses a newest backup older than this' -r
complete -c rebuild-monitoring -l env -d 'The environment holding the monitoring module (a folder name under --root)' -r
complete -c rebuild-monitoring -l target -d 'The Terraform address of the monitoring module' -r
complete -c rebuild-monitoring -l root -d 'Folder holding one subfolder per environment (default: the homelab\'s infrastructure/proxmox/environments; without a homelab root, that path under the current folder)' -r -F
complete -c rebuild-monitoring -l terraform-bin -d 'The Terraform or OpenTofu binary (default: TF_BIN, else tofu, else terraform)' -r -F
complete -c rebuild-monitoring -l tfvars -d 'The homelab\'s variable file, for the URLs, the VM id and the node (default: <root>/../terraform.tfvars)' -r -F
complete -c rebuild-monitoring -l vm-host -d 'The monitoring VM\'s SSH host, where `docker ps` must show the prometheus, grafana and alertmanager containers up (default: monitoring.vm.ip of the monitoring environment\'s terraform.tfvars; none: not checked). Logged in as root, with the node\'s SSH settings' -r
complete -c rebuild-monitoring -l prometheus-url -d 'Prometheus base URL (http://host:9090)' -r
complete -c rebuild-monitoring -l alertmanager-url -d 'Alertmanager base URL (http://host:9093)' -r
complete -c rebuild-monitoring -l grafana-url -d 'Grafana base URL (http://host:3000)' -r
complete -c rebuild-monitoring -l node-exporter-url -d 'node_exporter base URL (http://host:9100)' -r
complete -c rebuild-monitoring -l rule-group -d 'Alert rule groups Prometheus must have loaded (repeatable; default: drift-alerts and host-alerts)' -r
complete -c rebuild-monitoring -l deadline -d 'How long each check may keep retrying (humantime: 90s, 5m)' -r
complete -c rebuild-monitoring -l storage -d '--from-backup: storage for the restored disks (passed to qmrestore)' -r
complete -c rebuild-monitoring -l node -d 'The Proxmox node name (else PVE_NODE, else tfvars `node_name`, else the only node of the host)' -r
complete -c rebuild-monitoring -l host -d 'The Proxmox host to SSH to (else PVE_HOST, else the host of tfvars `proxmox_endpoint`)' -r
complete -c rebuild-monitoring -l user -d 'The SSH user (else PVE_SSH_USER, else tfvars `ssh_user`, else ssh_config or `root`)' -r
complete -c rebuild-monitoring -l port -d 'The SSH port (else ssh_config, else 22)' -r
complete -c rebuild-monitoring -l ssh-config -d 'The ssh_config file to read (default ~/.ssh/config)' -r -F
complete -c rebuild-monitoring -l identity -d 'An SSH identity (private key) file to try after the agent' -r -F
complete -c rebuild-monitoring -l known-hosts -d 'The known_hosts file the node\'s host key is checked against (else ssh_config\'s UserKnownHostsFile, else ~/.ssh/known_hosts)' -r -F
complete -c rebuild-monitoring -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c rebuild-monitoring -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c rebuild-monitoring -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c rebuild-monitoring -l from-terraform -d 'Re-create the stack with `terraform apply -target=<module>` in the monitoring environment, verify'
complete -c rebuild-monitoring -l verify-only -d 'Rebuild nothing: only verify the running stack'
complete -c rebuild-monitoring -l accept-new-host-key -d 'Record the node\'s host key when known_hosts has none for it (a changed key is always refused)'
complete -c rebuild-monitoring -s y -l force -l yes -d 'Non-interactive: answer yes to every confirmation. It does not loosen any safety check'
complete -c rebuild-monitoring -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c rebuild-monitoring -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c rebuild-monitoring -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c rebuild-monitoring -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c rebuild-monitoring -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c rebuild-monitoring -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rebuild-monitoring -s V -l version -d 'Print version'
