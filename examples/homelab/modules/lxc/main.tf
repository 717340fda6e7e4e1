# An LXC container on the Proxmox node (terraform_data stands in for the Proxmox provider, see
# modules/vm).

variable "hostname" {
  type = string
}

variable "vm_id" {
  type = number
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

resource "terraform_data" "container" {
  input = {
    hostname     = var.hostname
    vm_id        = var.vm_id
    memory       = var.memory
    cores        = var.cores
    tags         = var.tags
    rootfs_size  = var.rootfs_size
    unprivileged = true
  }
}

output "vm_id" {
  value = terraform_data.container.output.vm_id
}
