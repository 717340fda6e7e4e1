complete -c restore-tfstate -l env -d 'The environment (a folder name under --root)' -r
complete -c restore-tfstate -l root -d 'Folder holding one subfolder per environment (default: the homelab\'s infrastructure/proxmox/environments; without a homelab root, that path under the current folder)' -r -F
complete -c restore-tfstate -l terraform-bin -d 'The Terraform or OpenTofu binary (default: TF_BIN, else tofu, else terraform)' -r -F
complete -c restore-tfstate -l restore -d 'Make this version the current state again (as a new version with serial = current + 1)' -r
complete -c restore-tfstate -l show -d 'Print one version of the state, sensitive values masked' -r
complete -c restore-tfstate -l force-unlock -d 'Remove the state lock (`<key>.tflock`) left by a run that died, as `terraform force-unlock LOCK_ID` does: only while it still holds LOCK_ID (shown by --list and by the "locked" error), never another holder\'s lock. Asks first, unless --yes' -r
complete -c restore-tfstate -l version-id -d 'With --fallback or --to-local: use this S3 version instead of the latest' -r
complete -c restore-tfstate -l bucket -d 'Override the bucket' -r
complete -c restore-tfstate -l key -d 'Override the state object key' -r
complete -c restore-tfstate -l endpoint -d 'Override the S3 endpoint (http(s)://host:port)' -r
complete -c restore-tfstate -l region -d 'Override the region' -r
complete -c restore-tfstate -l backend-config -d 'A backend configuration file, as given to `terraform init -backend-config=FILE` (repeatable)' -r -F
complete -c restore-tfstate -l tfvars -d 'The Terraform variable file to read settings from (default: the homelab\'s own, as each tool\'s help says)' -r -F
complete -c restore-tfstate -l backup-dir -d 'Where save points (local copies of the state before a write) go' -r -F
complete -c restore-tfstate -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c restore-tfstate -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c restore-tfstate -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c restore-tfstate -l list -d 'List every version of the state object, newest first'
complete -c restore-tfstate -l details -d 'With --list: fetch each version (in parallel) and show its serial, lineage, Terraform version and resource count'
complete -c restore-tfstate -l show-sensitive -d 'With --show: print sensitive values too'
complete -c restore-tfstate -l fallback -d 'MinIO is down: switch the environment to a local backend. backend.tf is kept as backend.tf.minio-backup and rewritten with a local backend; the state is written to the environment as terraform.tfstate (from S3, or the newest save point when S3 does not answer)'
complete -c restore-tfstate -l return -d 'MinIO is back: once http://<endpoint>/minio/health/live answers, push the local state to S3 as a new version and restore backend.tf from backend.tf.minio-backup'
complete -c restore-tfstate -l to-local -d 'Like --fallback, but backend.tf stays and an override file selects the local backend'
complete -c restore-tfstate -l to-minio -d 'Like --return, without the health check: push the local state to S3, remove the override (or put backend.tf back) and prove that Terraform uses S3 again (terraform init -reconfigure, then plan)'
complete -c restore-tfstate -l verify-plan -d 'After --restore: run `terraform plan -refresh=false` against the restored state'
complete -c restore-tfstate -s y -l force -l yes -d 'Non-interactive: answer yes to every confirmation. It does not loosen any safety check'
complete -c restore-tfstate -l allow-lineage-change -d 'Restore a state of another lineage, overwrite a newer remote serial with --return/--to-minio, or write to a bucket without versioning (the local save point is then the only way back)'
complete -c restore-tfstate -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c restore-tfstate -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c restore-tfstate -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c restore-tfstate -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c restore-tfstate -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c restore-tfstate -s h -l help -d 'Print help (see more with \'--help\')'
complete -c restore-tfstate -s V -l version -d 'Print version'
