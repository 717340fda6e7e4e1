# Regression tests of the lxc module: `terraform test` in plan mode with a mocked provider.

mock_provider "proxmox" {}

variables {
  hostname = "pihole"
  vm_id    = 201
  memory   = 512
  tags     = ["dns", "lab"]
}

# Bug: the tags given to the module were not passed on, so containers showed up untagged in Proxmox
# and the tag-based backup selection skipped them.
run "keeps_tags" {
  command = plan

  assert {
    condition     = toset(proxmox_virtual_environment_container.container.tags) == toset(["dns", "lab"])
    error_message = "the container lost its tags"
  }
}

# Bug: without a description Proxmox showed an empty notes field and nobody could tell the container
# was managed by Terraform (and edited it by hand).
run "description_defaults_to_managed_by_terraform" {
  command = plan

  assert {
    condition     = proxmox_virtual_environment_container.container.description == "Managed by Terraform"
    error_message = "the default description must be \"Managed by Terraform\""
  }
}

# Bug: unattended security updates were switched on for every OS type, and provisioning failed on
# templates without unattended-upgrades (alpine, centos...).
run "security_updates_on_debian" {
  command = plan

  assert {
    condition     = output.security_updates == true
    error_message = "debian supports unattended security updates"
  }
}

run "no_security_updates_on_alpine" {
  command = plan

  variables {
    os_type          = "alpine"
    template_file_id = "local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz"
  }

  assert {
    condition     = output.security_updates == false
    error_message = "alpine has no unattended-upgrades: security updates must stay off"
  }
}
