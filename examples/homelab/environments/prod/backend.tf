# State lives beside the configuration (committed, for the example).
terraform {
  required_version = ">= 1.6"

  backend "local" {}
}
