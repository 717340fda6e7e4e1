# State storage and monitoring: the infrastructure the other environments depend on.

module "minio" {
  source = "../../modules/minio"

  vm_id   = 110
  buckets = ["tfstate", "backups"]
}

module "monitoring_stack" {
  source = "../../modules/monitoring_stack"

  vm_id = 111
}
