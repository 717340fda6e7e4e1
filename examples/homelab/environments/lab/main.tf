# Lab containers: short-lived, rebuilt often.

module "ci_runner" {
  source    = "../../modules/lxc"
  node_name = var.default_node

  hostname    = "ci-runner"
  vm_id       = 200
  memory      = 2048
  cores       = 2
  tags        = ["ci", "lab"]
  rootfs_size = 16
}

module "pihole" {
  source    = "../../modules/lxc"
  node_name = var.default_node

  hostname = "pihole"
  vm_id    = 201
  memory   = 512
  tags     = ["dns", "lab"]
}

module "sandbox" {
  source    = "../../modules/lxc"
  node_name = var.default_node

  hostname = "sandbox"
  vm_id    = 202
  memory   = 1024
  tags     = ["lab"]
}
