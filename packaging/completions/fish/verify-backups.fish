complete -c verify-backups -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c verify-backups -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c verify-backups -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c verify-backups -l node -d 'The Proxmox node name (else PVE_NODE, else tfvars `node_name`, else the only node of the host)' -r
complete -c verify-backups -l host -d 'The Proxmox host to SSH to (else PVE_HOST, else the host of tfvars `proxmox_endpoint`)' -r
complete -c verify-backups -l user -d 'The SSH user (else PVE_SSH_USER, else tfvars `ssh_user`, else ssh_config or `root`)' -r
complete -c verify-backups -l port -d 'The SSH port (else ssh_config, else 22)' -r
complete -c verify-backups -l ssh-config -d 'The ssh_config file to read (default ~/.ssh/config)' -r -F
complete -c verify-backups -l identity -d 'An SSH identity (private key) file to try after the agent' -r -F
complete -c verify-backups -l known-hosts -d 'The known_hosts file the node\'s host key is checked against (else ssh_config\'s UserKnownHostsFile, else ~/.ssh/known_hosts)' -r -F
complete -c verify-backups -l env -d 'Only this environment (repeatable): its node, the guests its Terraform state manages and its state in S3' -r
complete -c verify-backups -l storage -d 'The backup storage whose backups are checked' -r
complete -c verify-backups -l max-age -d 'A newest backup older than this is a WARNING, e.g. `26h`, `2d`' -r
complete -c verify-backups -l vmid -d 'Only this guest (repeatable, for several)' -r
complete -c verify-backups -l min-size -d 'A newest backup smaller than this many bytes is suspiciously small (a WARNING)' -r
complete -c verify-backups -l local-dir -d 'Read the archives from this directory here (a mounted dump folder) instead of on the node: `DIR` for every storage or `STORAGE=DIR` for one (repeatable). With no --node, --host, PVE_HOST or --env, no node is contacted: every vzdump archive in DIR is checked on its own (an offsite or USB copy): name, size, log, compression, VMA or tar, always read whole, and its SHA-256 against the manifest when it records it (by volid, else by file name); an empty DIR is an error' -r
complete -c verify-backups -l dump-dir -d 'Where a storage\'s dump folder is on the node, `STORAGE=DIR` (repeatable); by default the storage\'s `path` from `pvesh get /storage/<id>` plus `/dump`' -r
complete -c verify-backups -s j -l jobs -d 'Archives checked at once by --deep --local-dir (default: the number of CPUs)' -r
complete -c verify-backups -l manifest -d 'The SHA-256 manifest (`sha256sum` format, one `<hash>  <volid>` line per archive); the default is in the systemd unit\'s StateDirectory' -r -F
complete -c verify-backups -l root -d 'Folder of the Terraform environments (each a subfolder) whose state in S3 is checked' -r -F
complete -c verify-backups -l tfvars -d 'terraform.tfvars with minio_access_key/minio_secret_key, when the S3 credentials are not in the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or the backend configuration' -r -F
complete -c verify-backups -l state-max-age -d 'The newest state version may not be older than this, e.g. `30d`' -r
complete -c verify-backups -l terraform-bin -d 'Terraform binary for --full' -r -F
complete -c verify-backups -l minio-url -d 'MinIO (S3) base URL for --full (default: the S3 endpoint of the first environment)' -r
complete -c verify-backups -l prometheus-url -d 'Prometheus base URL for --full' -r
complete -c verify-backups -l grafana-url -d 'Grafana base URL for --full' -r
complete -c verify-backups -l alertmanager-url -d 'Alertmanager base URL for --full' -r
complete -c verify-backups -l textfile-dir -d 'Write node_exporter textfile metrics (`pve_backup.prom`) into this folder' -r -F
complete -c verify-backups -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c verify-backups -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c verify-backups -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c verify-backups -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c verify-backups -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c verify-backups -l accept-new-host-key -d 'Record the node\'s host key when known_hosts has none for it (a changed key is always refused)'
complete -c verify-backups -l all-storages -d 'Check the backups of every backup storage of the node, not only --storage'
complete -c verify-backups -l all-backups -d 'Check every backup, not only the newest of each guest'
complete -c verify-backups -l include-templates -d 'Include templates in the coverage check'
complete -c verify-backups -l deep -d 'Read and check every byte of each archive (compression checksum, VMA extents or tar members)'
complete -c verify-backups -l record -d 'Store the SHA-256 of every checked archive in the manifest (new archives are added; a changed archive is reported as corrupt and its recorded hash kept)'
complete -c verify-backups -l full -d 'Also the node\'s backup jobs (`pvesh get /cluster/backup`: a disabled job, or a guest in no enabled job, is a WARNING) and the connectivity of every running guest (section "Verification de la connectivite": `qm guest cmd <vmid> ping` through the QEMU guest agent, `pct exec <vmid> -- true`; no answer is a WARNING), and the disaster-recovery final check: `terraform init` for every environment, and MinIO, Prometheus, Grafana and Alertmanager answer their health endpoints (those with a URL)'
complete -c verify-backups -l details -d 'Also print a table per component (every check with its reason) before the report'
complete -c verify-backups -s h -l help -d 'Print help (see more with \'--help\')'
complete -c verify-backups -s V -l version -d 'Print version'
