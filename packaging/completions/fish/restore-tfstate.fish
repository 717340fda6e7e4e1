complete -c restore-tfstate -l env -d 'The environment (a folder name under --root)' -r
complete -c restore-tfstate -l root -d 'Folder holding one subfolder per environment' -r -F
complete -c restore-tfstate -l restore -d 'Make this version the current state again (as a new version with serial = current + 1)' -r
complete -c restore-tfstate -l show -d 'Print one version of the state, sensitive values masked' -r
complete -c restore-tfstate -s V -l version -d 'Alone: print the tool\'s version. With --to-local: use this S3 version instead of the latest' -r
complete -c restore-tfstate -l bucket -d 'Override the bucket' -r
complete -c restore-tfstate -l key -d 'Override the state object key' -r
complete -c restore-tfstate -l endpoint -d 'Override the S3 endpoint (http(s)://host:port)' -r
complete -c restore-tfstate -l region -d 'Override the region' -r
complete -c restore-tfstate -l backend-config -d 'A backend configuration file, as given to `terraform init -backend-config=FILE` (repeatable)' -r -F
complete -c restore-tfstate -l tfvars -d 'The homelab\'s variable file for MinIO credentials (default: <root>/../terraform.tfvars)' -r -F
complete -c restore-tfstate -l backup-dir -d 'Where save points (local copies of the state before a write) go' -r -F
complete -c restore-tfstate -l terraform-bin -d 'The Terraform or OpenTofu binary (default: TF_BIN, else tofu, else terraform)' -r -F
complete -c restore-tfstate -l homelab -d 'The homelab root (else PVE_HOMELAB, else the nearest folder above the current directory holding infrastructure/proxmox/environments); default paths derive from it' -r -F
complete -c restore-tfstate -l lang -d 'Language of messages and of the text report (else PVE_TOOLS_LANG, else LC_ALL / LC_MESSAGES / LANG). JSON output is the same in every language' -r -f -a "en\t'English'
fr\t'French, the language of the scripts the tools replace'"
complete -c restore-tfstate -l color -d 'When to colour messages on stderr' -r -f -a "auto\t'Colour when stderr is a terminal and `NO_COLOR` is unset'
always\t'Always colour'
never\t'Never colour'"
complete -c restore-tfstate -l list -d 'List every version of the state object, newest first'
complete -c restore-tfstate -l details -d 'With --list: fetch each version (in parallel) and show its serial, lineage, Terraform version and resource count'
complete -c restore-tfstate -l show-sensitive -d 'With --show: print sensitive values too'
complete -c restore-tfstate -l to-local -d 'MinIO is down or must not be used: write the state to the environment as a local state and add a backend override file so terraform plan/apply use it'
complete -c restore-tfstate -l to-minio -d 'MinIO is back: push the local state to S3 as a new version, remove the override and prove that Terraform uses S3 again (terraform init -reconfigure, then plan)'
complete -c restore-tfstate -l verify-plan -d 'After --restore: run `terraform plan -refresh=false` against the restored state'
complete -c restore-tfstate -l force -d 'Restore a state of another lineage, overwrite a newer remote serial with --to-minio, or write to a bucket without versioning (the local save point is then the only way back)'
complete -c restore-tfstate -s y -l yes -d 'Answer yes to the confirmation prompt. Without a terminal, a tool that would ask refuses unless this is given'
complete -c restore-tfstate -l dry-run -d 'Contact nothing and change nothing: print every command this run would make, queries included, on stderr lines containing [DRY-RUN] (with <placeholders> for what only a query would tell), and exit 0'
complete -c restore-tfstate -l preview -d 'Like --dry-run, but run the read-only queries, to show exactly what would change'
complete -c restore-tfstate -l json -d 'Print one JSON document on stdout (schema in docs/json/) instead of the text report'
complete -c restore-tfstate -s v -l verbose -d 'Say more on stderr (commands run, timings)'
complete -c restore-tfstate -s q -l quiet -d 'Say only warnings and errors on stderr'
complete -c restore-tfstate -s h -l help -d 'Print help (see more with \'--help\')'
