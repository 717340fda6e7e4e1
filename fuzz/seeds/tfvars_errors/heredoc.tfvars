x = <<EOF
line
|
EOF
