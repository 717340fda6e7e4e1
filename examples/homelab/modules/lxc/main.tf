# An LXC container on the Proxmox node.

terraform {
  required_providers {
    proxmox = {
      source = "pve-tools.test/sim/proxmox"
    }
  }
}

variable "hostname" {
  type = string
}

variable "vm_id" {
  type = number
}

variable "node_name" {
  type    = string
  default = "pve"
}

variable "description" {
  type    = string
  default = "Managed by Terraform"
}

variable "memory" {
  description = "Memory in MiB."
  type        = number
}

variable "cores" {
  type    = number
  default = 1
}

variable "tags" {
  type    = list(string)
  default = []
}

variable "rootfs_size" {
  description = "Root file system size in GiB."
  type        = number
  default     = 8
}

variable "os_type" {
  description = "Distribution of the template (Proxmox's ostype)."
  type        = string
  default     = "debian"
}

variable "template_file_id" {
  type    = string
  default = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"
}

variable "security_updates" {
  description = "Install unattended security updates, where the OS type has them."
  type        = bool
  default     = true
}

locals {
  # Only these templates ship unattended-upgrades; turning it on elsewhere broke provisioning.
  security_update_os_types = ["debian", "ubuntu"]
  security_updates         = var.security_updates && contains(local.security_update_os_types, var.os_type)
}

resource "proxmox_virtual_environment_container" "container" {
  node_name     = var.node_name
  vm_id         = var.vm_id
  description   = var.description
  tags          = var.tags
  unprivileged  = true
  start_on_boot = true

  cpu {
    cores = var.cores
  }

  memory {
    dedicated = var.memory
  }

  disk {
    datastore_id = "local-lvm"
    size         = var.rootfs_size
  }

  operating_system {
    template_file_id = var.template_file_id
    type             = var.os_type
  }

  initialization {
    hostname = var.hostname
  }

  network_interface {
    name   = "eth0"
    bridge = "vmbr0"
  }
}

output "vm_id" {
  value = proxmox_virtual_environment_container.container.vm_id
}

output "tags" {
  value = proxmox_virtual_environment_container.container.tags
}

output "description" {
  value = proxmox_virtual_environment_container.container.description
}

output "security_updates" {
  description = "Whether unattended security updates are enabled in the container."
  value       = local.security_updates
}
