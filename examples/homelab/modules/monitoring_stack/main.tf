# Prometheus, Alertmanager and Grafana on one VM, with the alert rules they load.

variable "vm_id" {
  type = number
}

variable "scrape_interval" {
  type    = string
  default = "30s"
}

module "vm" {
  source = "../vm"

  name   = "monitoring"
  vm_id  = var.vm_id
  memory = 4096
  cores  = 2
  tags   = ["infra", "monitoring"]
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 64 },
  ]
}

resource "terraform_data" "config" {
  input = {
    scrape_interval = var.scrape_interval
    rule_files      = ["node.rules.yml", "backups.rules.yml", "minio.rules.yml"]
    receivers       = ["ntfy"]
  }
}
