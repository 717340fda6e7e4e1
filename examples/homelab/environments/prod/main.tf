# Production services.

module "jellyfin" {
  source    = "../../modules/vm"
  node_name = var.default_node

  name   = "jellyfin"
  vm_id  = 100
  memory = 8192
  cores  = 4
  tags   = ["media", "prod"]

  startup_order = 2
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 32 },
    { interface = "scsi1", storage = "local-lvm", size = 500 },
  ]
}

module "nextcloud" {
  source    = "../../modules/vm"
  node_name = var.default_node

  name   = "nextcloud"
  vm_id  = 101
  memory = 6144
  cores  = 4
  tags   = ["files", "prod"]

  startup_order = 3
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 64 },
  ]
}

module "home_assistant" {
  source    = "../../modules/vm"
  node_name = var.default_node

  name   = "home-assistant"
  vm_id  = 102
  memory = 4096
  cores  = 2
  tags   = ["iot", "prod"]

  startup_order = 1
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 32 },
  ]
}
