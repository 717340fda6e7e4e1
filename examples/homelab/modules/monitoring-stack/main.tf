# Prometheus, Alertmanager and Grafana on one VM, configured by cloud-init.

terraform {
  required_providers {
    proxmox = {
      source = "pve-tools.test/sim/proxmox"
    }
  }
}

variable "node_name" {
  description = "The Proxmox node the guest runs on."
  type        = string
  default     = "pve"
}

variable "vm_id" {
  type = number
}

variable "ssh_public_key" {
  description = "Admin key for the VM (ED25519)."
  type        = string
  default     = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDr0rQx1n8mP4wFjS9b7vXcT3eKzYh2uLqN6oG5sWdE4 ops@homelab"

  validation {
    condition     = startswith(var.ssh_public_key, "ssh-ed25519 ")
    error_message = "ssh_public_key must be an ED25519 key (ssh-ed25519 ...)."
  }
}

variable "scrape_interval" {
  type    = string
  default = "30s"
}

locals {
  # Snippets are only enabled on the `local` directory storage; LVM datastores cannot hold them.
  snippet_datastore = "local"
  snippet_file_id   = "${local.snippet_datastore}:snippets/monitoring-cloud-init.yaml"
  rule_files        = ["node.rules.yml", "backups.rules.yml", "minio.rules.yml"]
}

module "vm" {
  source = "../vm"

  node_name     = var.node_name
  name          = "monitoring"
  vm_id         = var.vm_id
  memory        = 4096
  cores         = 2
  tags          = ["infra", "monitoring"]
  scsi_hardware = "virtio-scsi-single"
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 64 },
  ]
  cloud_init = {
    datastore_id = local.snippet_datastore
    ssh_keys     = [var.ssh_public_key]
  }
}

output "vm_id" {
  value = module.vm.vm_id
}

output "cloud_init_snippet" {
  value = local.snippet_file_id
}

output "rule_files" {
  value = local.rule_files
}
