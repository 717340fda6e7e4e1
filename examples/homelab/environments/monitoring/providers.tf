# The Proxmox provider under its usual local name. Here it is the simulated provider of the test bed
# (pve-tools.test/sim/proxmox, installed from a filesystem mirror named by TF_CLI_CONFIG_FILE, acting on
# the simulator's state directory PVE_SIM_STATE); a real homelab uses bpg/proxmox with the same resources.
terraform {
  required_providers {
    proxmox = {
      source = "pve-tools.test/sim/proxmox"
    }
  }
}

provider "proxmox" {
  endpoint = var.proxmox_endpoint
  insecure = true

  ssh {
    agent    = true
    username = var.ssh_user
  }
}
