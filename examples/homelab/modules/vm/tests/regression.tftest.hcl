# Regression tests of the vm module: `terraform test` in plan mode with a mocked provider.

mock_provider "proxmox" {}

variables {
  name   = "jellyfin"
  vm_id  = 100
  memory = 8192
  cores  = 4
  tags   = ["media", "prod"]
  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 32 },
    { interface = "scsi1", storage = "tank", size = 500 },
  ]
}

# Guards: the tags given to the module reach the VM (backups select guests by tag).
run "keeps_tags" {
  command = plan

  assert {
    condition     = toset(proxmox_virtual_environment_vm.vm.tags) == toset(["media", "prod"])
    error_message = "the VM lost its tags"
  }
}

# Guards: memory and cores are the VM's, not the provider's defaults.
run "sizes_memory_and_cores" {
  command = plan

  assert {
    condition     = proxmox_virtual_environment_vm.vm.memory[0].dedicated == 8192
    error_message = "memory must be 8192 MiB"
  }

  assert {
    condition     = proxmox_virtual_environment_vm.vm.cpu[0].cores == 4
    error_message = "the VM must have 4 cores"
  }
}

# Guards: every disk is planned, in order, on its own storage with its size (a lost data disk is a
# lost library after a rebuild).
run "plans_every_disk" {
  command = plan

  assert {
    condition     = length(proxmox_virtual_environment_vm.vm.disk) == 2
    error_message = "two disks expected"
  }

  assert {
    condition = (
      proxmox_virtual_environment_vm.vm.disk[1].interface == "scsi1" &&
      proxmox_virtual_environment_vm.vm.disk[1].datastore_id == "tank" &&
      proxmox_virtual_environment_vm.vm.disk[1].size == 500
    )
    error_message = "the data disk must be scsi1 on tank, 500 GiB"
  }
}

# Guards: defaults a hand-made VM on the node would not have (description, SCSI controller).
run "defaults" {
  command = plan

  assert {
    condition     = proxmox_virtual_environment_vm.vm.description == "Managed by Terraform"
    error_message = "the default description must be \"Managed by Terraform\""
  }

  assert {
    condition     = output.scsi_hardware == "virtio-scsi-single"
    error_message = "the default SCSI controller must be virtio-scsi-single"
  }

  assert {
    condition     = length(proxmox_virtual_environment_vm.vm.startup) == 0
    error_message = "without startup_order there is no startup block (Proxmox decides)"
  }

  assert {
    condition     = length(output.initialization) == 0
    error_message = "without cloud_init there is no cloud-init drive"
  }
}

run "startup_order_when_given" {
  command = plan

  variables {
    startup_order = 2
  }

  assert {
    condition     = proxmox_virtual_environment_vm.vm.startup[0].order == 2
    error_message = "startup order 2 expected"
  }
}

# Guards: the cloud-init drive carries the SSH keys (without them a rebuilt VM cannot be reached).
run "cloud_init_carries_the_keys" {
  command = plan

  variables {
    cloud_init = {
      datastore_id = "local-lvm"
      ssh_keys     = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGV4YW1wbGUta2V5LW9ubHktZm9yLXRlc3Rz ops@example"]
    }
  }

  assert {
    condition     = output.initialization[0].datastore_id == "local-lvm"
    error_message = "the cloud-init drive must be on local-lvm"
  }

  assert {
    condition     = length(output.initialization[0].user_account[0].keys) == 1
    error_message = "the SSH key must reach the cloud-init user"
  }
}
