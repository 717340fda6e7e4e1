# The prod environment's own node: each environment of the homelab runs on its own Proxmox host.
# Example values (TEST-NET-1 addresses, which never route); the pve-tools read these to find the node.

proxmox_endpoint = "https://192.0.2.10:8006/"
default_node     = "pve-prod"
