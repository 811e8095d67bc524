#!/bin/sh
# Install the Debian packages that building, the sim and the tests need.
# Idempotent: prints nothing when everything is already installed.
set -eu

PACKAGES="
build-essential kmod bc flex bison libelf-dev libssl-dev
linux-image-amd64 linux-headers-amd64 linux-source-6.1
qemu-system-x86 busybox-static cpio
rdma-core ibverbs-utils rdmacm-utils perftest libibverbs-dev librdmacm-dev
numactl libnuma-dev iproute2 procps xz-utils zstd
lcov
dkms dropbear-bin openssh-client jq
python3-dev python3-setuptools python3-numpy python3-torch python3-pytest python3-pip
python3-venv trinity
"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "make deps: missing packages:$missing" >&2
	echo "make deps: run as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi

echo "make deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086 # word splitting of the package list is wanted
apt-get install -y -q --no-install-recommends $missing >/dev/null
