complete -c rebuild-minio -l env -d 'The environment that defines MinIO (a folder name under --root). Default: the environment whose local Terraform state manages a guest of --target (the MinIO container; a state in MinIO cannot be read while MinIO is down), else `monitoring`. Its node, from its own terraform.tfvars (`default_node`), is named in the report' -r
complete -c rebuild-minio -l target -d 'The Terraform address of the MinIO module (only it is applied)' -r
complete -c rebuild-minio -l buckets -d 'The state buckets to create and check (comma-separated; default: every bucket named by an environment\'s S3 backend)' -r
complete -c rebuild-minio -l state-from -d 'Folder of state save points (restore-tfstate\'s `<env>-<time>.tfstate` files) to upload from (default: restore-tfstate\'s save-point folder)' -r -F
complete -c rebuild-minio -l root -d 'Folder holding one subfolder per environment (default: the homelab\'s infrastructure/proxmox/environments; without a homelab root, that path under the current folder)' -r -F
complete -c rebuild-minio -l terraform-bin -d 'The Terraform or OpenTofu binary (default: TF_BIN, else tofu, else terraform)' -r -F
complete -c rebuild-minio -l endpoint -d 'Override the S3 endpoint of every environment (http(s)://host:port; default: the active `backend "s3"` block, else `http://IP:PORT` of the homelab\'s `minio = {...}` tfvars block)' -r
complete -c rebuild-minio -l tfvars -d 'The homelab\'s variable file for MinIO credentials (default: <root>/../terraform.tfvars)' -r -F
complete -c rebuild-minio -l health-timeout -d 'How long to wait for MinIO to answer after the apply (humantime: 90s, 5m)' -r
complete -c rebuild-minio -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c rebuild-minio -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c rebuild-minio -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c rebuild-minio -l allow-lineage-change -d 'Replace an S3 state of another lineage with the save point (refused without it)'
complete -c rebuild-minio -l rebuild-healthy -d 'Rebuild even when MinIO, its buckets and every state are healthy (without it a healthy MinIO is left alone)'
complete -c rebuild-minio -s y -l force -l yes -d 'Non-interactive: answer yes to every confirmation. It does not loosen any safety check'
complete -c rebuild-minio -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c rebuild-minio -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c rebuild-minio -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c rebuild-minio -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c rebuild-minio -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c rebuild-minio -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rebuild-minio -s V -l version -d 'Print version'
