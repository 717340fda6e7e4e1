# State storage and monitoring: the infrastructure the other environments depend on.

module "minio" {
  source    = "../../modules/minio"
  node_name = var.default_node

  vm_id   = 110
  buckets = ["tfstate", "backups"]
}

module "monitoring_stack" {
  source    = "../../modules/monitoring-stack"
  node_name = var.default_node

  vm_id = 111
}

# The nightly backup of every guest of the homelab (rendered command, no resource).
module "backup" {
  source = "../../modules/backup"

  vm_ids = [100, 101, 102, 110, 111, 200, 201, 202]
}
