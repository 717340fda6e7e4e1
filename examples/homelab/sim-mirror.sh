# shellcheck shell=bash
# Sourced by run-check-drift and test-modules: builds the test provider (pve-tools.test/sim/proxmox)
# and lays it out as a Terraform filesystem mirror under $sim (default examples/homelab/.sim, or
# $HOMELAB_SIM_DIR), with a CLI config that keeps that source address off the network. Exports
# TF_CLI_CONFIG_FILE; sets $here, $repo, $sim and $target (cargo's target directory).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
sim=${HOMELAB_SIM_DIR:-$here/.sim}

# Builds the provider (and the given extra cargo packages' binaries) and installs the mirror.
# `terraform init` pins the provider's hash in .terraform.lock.hcl; when the binary changed, the
# lock files under examples/homelab (ignored by git) are removed so init records the new one.
homelab_sim_mirror() {
    (cd "$repo" && cargo build -q -p sim-provider --bin terraform-provider-proxmox)
    target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
    local pkgid version arch platform plugin_dir plugin
    pkgid=$(cd "$repo" && cargo pkgid -p sim-provider)
    version=${pkgid##*[#@]}
    case $(uname -m) in
        x86_64) arch=amd64 ;;
        aarch64) arch=arm64 ;;
        *) arch=$(uname -m) ;;
    esac
    platform="$(uname -s | tr '[:upper:]' '[:lower:]')_$arch"
    plugin_dir="$sim/mirror/pve-tools.test/sim/proxmox/$version/$platform"
    plugin="$plugin_dir/terraform-provider-proxmox_v$version"
    mkdir -p "$plugin_dir"
    if ! cmp -s "$target/debug/terraform-provider-proxmox" "$plugin"; then
        cp "$target/debug/terraform-provider-proxmox" "$plugin.tmp"
        mv "$plugin.tmp" "$plugin"
        find "$here" -name .terraform.lock.hcl -not -path '*/.sim/*' -delete
    fi
    cat >"$sim/terraform.rc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$sim/mirror"
    include = ["pve-tools.test/*/*"]
  }
  direct {
    exclude = ["pve-tools.test/*/*"]
  }
}
RC
    export TF_CLI_CONFIG_FILE="$sim/terraform.rc"
    export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
}
