# The nightly vzdump job: which guests, where, how many backups to keep. Renders the command line the
# node's cron entry runs; no resource (the Proxmox provider has no backup job resource).

variable "vm_ids" {
  description = "Guests to back up; empty backs up nothing."
  type        = list(number)
  default     = []
}

variable "storage" {
  type    = string
  default = "local"
}

variable "mode" {
  description = "snapshot, suspend, stop, or disabled."
  type        = string
  default     = "snapshot"

  validation {
    condition     = contains(["snapshot", "suspend", "stop", "disabled"], var.mode)
    error_message = "mode must be snapshot, suspend, stop or disabled."
  }
}

variable "retention" {
  description = "How many backups to keep per period; zero leaves a period out."
  type = object({
    daily   = number
    weekly  = number
    monthly = number
  })
  default = {
    daily   = 7
    weekly  = 4
    monthly = 3
  }
}

locals {
  vm_id_list = join(",", [for id in var.vm_ids : tostring(id)])
  retention = join(",", [
    for period in ["daily", "weekly", "monthly"] :
    "keep-${period}=${var.retention[period]}" if var.retention[period] > 0
  ])
  command = (
    var.mode == "disabled"
    ? "echo 'backup job disabled: nothing to do'"
    : "vzdump ${local.vm_id_list} --mode ${var.mode} --storage ${var.storage} --compress zstd --prune-backups ${local.retention}"
  )
}

output "vm_id_list" {
  description = "The guests as vzdump takes them (comma-separated; empty string for none)."
  value       = local.vm_id_list
}

output "retention" {
  description = "vzdump's --prune-backups value."
  value       = local.retention
}

output "command" {
  description = "The command the cron entry runs."
  value       = local.command
}
