pve_host = "pve.lan"
vms = { a = { memory = 8192, tags = ["x"] } }
