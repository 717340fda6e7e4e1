# Regression tests of the minio module: `terraform test` in plan mode with a mocked provider.

mock_provider "proxmox" {}

variables {
  vm_id   = 110
  buckets = ["tfstate", "backups"]
}

# Bug: the mount point size was passed as a bare number, which Proxmox read as bytes; it needs the
# "G" suffix.
run "mount_point_size_has_g_suffix" {
  command = plan

  variables {
    data_size = 500
  }

  assert {
    condition     = output.mount_point.size == "500G"
    error_message = "mount point size rendered as ${output.mount_point.size}"
  }
}

# Bug: the module replaced its tags with the container module's default (none).
run "keeps_tags" {
  command = plan

  assert {
    condition     = toset(module.container.tags) == toset(["infra", "storage"])
    error_message = "the MinIO container lost its tags"
  }
}

# Bug: an output was dropped in a refactoring and rebuild-minio, which reads all four, failed.
run "all_four_outputs_exist" {
  command = plan

  assert {
    condition     = output.vm_id == 110
    error_message = "vm_id output"
  }

  assert {
    condition     = output.endpoint == "http://minio.home.arpa:9000"
    error_message = "endpoint output"
  }

  assert {
    condition     = output.buckets == tolist(["tfstate", "backups"])
    error_message = "buckets output"
  }

  assert {
    condition     = output.mount_point.path == "/srv/minio"
    error_message = "mount_point output"
  }
}
