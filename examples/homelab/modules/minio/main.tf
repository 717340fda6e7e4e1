# The MinIO VM that holds every environment's Terraform state, and its buckets.

variable "vm_id" {
  type = number
}

variable "buckets" {
  type = list(string)
}

module "vm" {
  source = "../vm"

  name   = "minio"
  vm_id  = var.vm_id
  memory = 4096
  cores  = 2
  tags   = ["infra", "storage"]
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 32 },
    { interface = "scsi1", storage = "local-lvm", size = 200 },
  ]
}

resource "terraform_data" "buckets" {
  input = {
    buckets    = var.buckets
    versioning = true
  }
}
