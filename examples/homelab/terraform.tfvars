# Settings shared by every environment and read by the pve-tools (restore-vm, rebuild-minio, ...).
# Example values: the host names do not resolve and the credentials are fake.

proxmox_endpoint = "https://pve.home.arpa:8006/"
node_name        = "pve"
ssh_user         = "root"

# MinIO holds the Terraform states (bucket "tfstate", versioned) and backups.
minio_endpoint   = "http://minio.home.arpa:9000"
minio_bucket     = "tfstate"
minio_access_key = "homelab-terraform"
minio_secret_key = "example-not-a-real-secret-8f2c1d"
