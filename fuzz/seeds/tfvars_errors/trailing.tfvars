node_name = "pve"
ssh_user = "root"|x
