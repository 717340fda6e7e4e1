//! SSH to the Proxmox node (being written: see issue 2, item 5).
