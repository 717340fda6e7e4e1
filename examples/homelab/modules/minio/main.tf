# The MinIO container that holds every environment's Terraform state, and its buckets.

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

variable "buckets" {
  type = list(string)
}

variable "data_size" {
  description = "Size of the data mount point in GiB."
  type        = number
  default     = 200
}

variable "tags" {
  type    = list(string)
  default = ["infra", "storage"]
}

locals {
  # Proxmox wants the unit on mount point sizes: a bare number was taken as bytes.
  mount_point = {
    volume = "local-lvm"
    path   = "/srv/minio"
    size   = "${var.data_size}G"
  }
}

module "container" {
  source = "../lxc"

  node_name   = var.node_name
  hostname    = "minio"
  vm_id       = var.vm_id
  memory      = 4096
  cores       = 2
  tags        = var.tags
  rootfs_size = 16
}

output "vm_id" {
  value = module.container.vm_id
}

output "endpoint" {
  value = "http://minio.home.arpa:9000"
}

output "buckets" {
  value = var.buckets
}

output "mount_point" {
  value = local.mount_point
}
