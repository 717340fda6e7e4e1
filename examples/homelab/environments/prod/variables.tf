# Connection settings shared by every environment (see terraform.tfvars at the homelab root); the
# provider block in providers.tf uses them.

variable "proxmox_endpoint" {
  type    = string
  default = "https://pve.home.arpa:8006/"
}

variable "node_name" {
  type    = string
  default = "pve"
}

variable "ssh_user" {
  type    = string
  default = "root"
}

variable "minio_endpoint" {
  description = "MinIO (S3) endpoint holding the states and backups."
  type        = string
  default     = "http://minio.home.arpa:9000"
}

variable "minio_bucket" {
  type    = string
  default = "tfstate"
}

variable "minio_access_key" {
  type     = string
  default  = null
  nullable = true
}

variable "minio_secret_key" {
  type      = string
  default   = null
  nullable  = true
  sensitive = true
}
