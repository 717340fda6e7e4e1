# Regression tests of the monitoring-stack module: `terraform test` in plan mode with a mocked
# provider.

mock_provider "proxmox" {}

variables {
  vm_id = 111
}

# Bug: the VM used the default SCSI controller (virtio-scsi-pci), so its disk had no IO thread and
# Prometheus' writes stalled the guest.
run "scsi_controller_is_virtio_scsi_single" {
  command = plan

  assert {
    condition     = module.vm.scsi_hardware == "virtio-scsi-single"
    error_message = "SCSI controller is ${module.vm.scsi_hardware}"
  }
}

# Bug: the cloud-init snippet went to local-lvm, which cannot hold snippets, and the VM booted
# unconfigured.
run "cloud_init_snippet_on_local" {
  command = plan

  assert {
    condition     = startswith(output.cloud_init_snippet, "local:snippets/")
    error_message = "cloud-init snippet is ${output.cloud_init_snippet}"
  }

  assert {
    condition     = module.vm.initialization[0].datastore_id == "local"
    error_message = "cloud-init drive is not on datastore local"
  }
}

# Bug: an RSA key was accepted, and the hardened sshd of the image (ED25519 only) refused every login.
run "takes_an_ed25519_key" {
  command = plan

  assert {
    condition     = startswith(module.vm.initialization[0].user_account[0].keys[0], "ssh-ed25519 ")
    error_message = "the VM's key is not the ED25519 key"
  }
}

run "refuses_an_rsa_key" {
  command = plan

  variables {
    ssh_public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 ops@homelab"
  }

  expect_failures = [var.ssh_public_key]
}
