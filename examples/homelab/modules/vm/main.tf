# A QEMU virtual machine on the Proxmox node.
#
# Built on terraform_data so `terraform init` downloads nothing; the simulated Proxmox provider
# (issue 13) replaces the resource with proxmox_virtual_environment_vm and keeps these inputs.

variable "name" {
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
  type = number
}

variable "tags" {
  type    = list(string)
  default = []
}

variable "disks" {
  description = "Disks by interface, sizes in GiB."
  type = list(object({
    interface = string
    storage   = string
    size      = number
  }))
}

resource "terraform_data" "vm" {
  input = {
    name   = var.name
    vm_id  = var.vm_id
    memory = var.memory
    cores  = var.cores
    tags   = var.tags
    disks  = var.disks
  }
}

output "vm_id" {
  value = terraform_data.vm.output.vm_id
}
