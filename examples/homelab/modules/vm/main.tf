# A QEMU virtual machine on the Proxmox node (bpg/proxmox's resource; in this example the simulated
# provider pve-tools.test/sim/proxmox serves it under the same local name).

terraform {
  required_providers {
    proxmox = {
      source = "pve-tools.test/sim/proxmox"
    }
  }
}

variable "name" {
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
  type = number
}

variable "tags" {
  type    = list(string)
  default = []
}

variable "startup_order" {
  description = "Boot order on the node (lower starts first); null leaves it to Proxmox."
  type        = number
  default     = null
}

variable "scsi_hardware" {
  type    = string
  default = "virtio-scsi-single"
}

variable "disks" {
  description = "Disks by interface, sizes in GiB."
  type = list(object({
    interface = string
    storage   = string
    size      = number
  }))
}

variable "cloud_init" {
  description = "Cloud-init drive: its datastore and the SSH keys of the default user; null for none."
  type = object({
    datastore_id = string
    ssh_keys     = list(string)
  })
  default = null
}

resource "proxmox_virtual_environment_vm" "vm" {
  node_name     = var.node_name
  vm_id         = var.vm_id
  name          = var.name
  description   = var.description
  tags          = var.tags
  scsi_hardware = var.scsi_hardware

  cpu {
    cores = var.cores
  }

  memory {
    dedicated = var.memory
  }

  dynamic "disk" {
    for_each = var.disks
    content {
      interface    = disk.value.interface
      datastore_id = disk.value.storage
      size         = disk.value.size
    }
  }

  network_device {
    bridge = "vmbr0"
  }

  dynamic "startup" {
    for_each = var.startup_order == null ? [] : [var.startup_order]
    content {
      order = startup.value
    }
  }

  dynamic "initialization" {
    for_each = var.cloud_init == null ? [] : [var.cloud_init]
    content {
      datastore_id = initialization.value.datastore_id
      user_account {
        keys = initialization.value.ssh_keys
      }
    }
  }
}

output "vm_id" {
  value = proxmox_virtual_environment_vm.vm.vm_id
}

output "scsi_hardware" {
  value = proxmox_virtual_environment_vm.vm.scsi_hardware
}

output "initialization" {
  description = "The cloud-init block as planned (empty list without cloud-init)."
  value       = proxmox_virtual_environment_vm.vm.initialization
  # It holds the cloud-init user's password, sensitive in the provider's schema; without this a root
  # module using it (the module's own tests) fails with "Output refers to sensitive values".
  sensitive = true
}
