# Regression tests of the backup module: `terraform test` in plan mode (the module has no resources).

variables {
  vm_ids = [100, 101, 200]
}

# Bug: the retention was rendered with the periods in the wrong order and with zero periods left in
# (keep-weekly=0), which vzdump rejects.
run "renders_retention" {
  command = plan

  assert {
    condition     = output.retention == "keep-daily=7,keep-weekly=4,keep-monthly=3"
    error_message = "default retention rendered as ${output.retention}"
  }
}

run "leaves_zero_periods_out" {
  command = plan

  variables {
    retention = { daily = 14, weekly = 0, monthly = 6 }
  }

  assert {
    condition     = output.retention == "keep-daily=14,keep-monthly=6"
    error_message = "retention rendered as ${output.retention}"
  }
}

# Bug: an empty VMID list rendered as "null" (and vzdump backed up a guest named null).
run "empty_vm_id_list_is_an_empty_string" {
  command = plan

  variables {
    vm_ids = []
  }

  assert {
    condition     = output.vm_id_list == ""
    error_message = "an empty VMID list must render as an empty string, got \"${output.vm_id_list}\""
  }
}

run "vm_id_list_is_comma_separated" {
  command = plan

  assert {
    condition     = output.vm_id_list == "100,101,200"
    error_message = "got ${output.vm_id_list}"
  }
}

# Bug: the disabled mode still rendered a vzdump command (with `--mode disabled`, which failed every
# night); disabled must render a command that does nothing.
run "disabled_mode_command" {
  command = plan

  variables {
    mode = "disabled"
  }

  assert {
    condition     = output.command == "echo 'backup job disabled: nothing to do'"
    error_message = "disabled mode rendered ${output.command}"
  }

  assert {
    condition     = !strcontains(output.command, "vzdump ")
    error_message = "disabled mode must not run vzdump"
  }
}
