#!/bin/bash
# Build the guest initramfs: busybox-static plus just the modules needed to
# mount the host's / over virtio-9p with an overlayfs on top (see vm/init).
#
#   vm/mkinitramfs.sh KVER OUT [MODULES_ROOT]    write OUT (cpio.gz)
#   vm/mkinitramfs.sh --list KVER [MODULES_ROOT] print the module files used
#
# MODULES_ROOT (default /lib/modules) must contain KVER/ with a modules.dep.
set -euo pipefail

# Top-level modules (virtio_net too: loading it here from RAM is much faster
# than from the 9p root under TCG); dependencies are resolved with modprobe.
MODULES=(virtio_pci virtio_net 9pnet_virtio 9p overlay)

die() { echo "mkinitramfs.sh: $*" >&2; exit 1; }

# Print the module files for $MODULES, dependencies first, each once;
# built-in modules are skipped. modprobe -d wants ROOT/lib/modules/KVER, so
# an arbitrary MODULES_ROOT is presented to it through a symlink.
list_modules() {
    local kver=$1 modroot fake kind path deps
    local -A seen=()
    [[ -f $2/$kver/modules.dep ]] || die "no $2/$kver/modules.dep"
    modroot=$(realpath "$2")
    fake=$(mktemp -d)
    mkdir "$fake/lib"
    ln -s "$modroot" "$fake/lib/modules"
    deps=$(modprobe -d "$fake" -S "$kver" --show-depends -a "${MODULES[@]}") ||
        { rm -rf "$fake"; die "cannot resolve ${MODULES[*]} for $kver"; }
    rm -rf "$fake"
    # Lines are "insmod /path/mod.ko [params]" or "builtin mod".
    while read -r kind path _; do
        [[ $kind == insmod ]] || continue
        path=$modroot/${path#"$fake"/lib/modules/}
        [[ -n ${seen[$path]:-} ]] || echo "$path"
        seen[$path]=1
    done <<<"$deps"
}

if [[ ${1:-} == --list ]]; then
    [[ $# -ge 2 ]] || die "usage: $0 --list KVER [MODULES_ROOT]"
    list_modules "$2" "${3:-/lib/modules}"
    exit 0
fi
[[ $# -ge 2 && $# -le 3 ]] || die "usage: $0 KVER OUT [MODULES_ROOT]"
kver=$1 out=$2 modroot=${3:-/lib/modules}
here=$(dirname "$(realpath "$0")")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lower,upper,newroot,etc} \
         "$stage/lib/modules/$kver/kernel"

cp /bin/busybox "$stage/bin/busybox"
# A dynamic busybox would fail only at boot, with an obscure panic.
! ldd /bin/busybox >/dev/null 2>&1 ||
    die "/bin/busybox is not static (install busybox-static)"
ln -s busybox "$stage/bin/sh"    # vm/init installs the other applet links
install -m 0755 "$here/init" "$stage/init"

mods=$(list_modules "$kver" "$modroot")
dest=$stage/lib/modules/$kver/kernel
for f in $mods; do
    case $f in
        *.ko)     cp "$f" "$dest/" ;;
        *.ko.xz)  xz -dc "$f" >"$dest/$(basename "${f%.xz}")" ;;
        *.ko.zst) zstd -qdc "$f" >"$dest/$(basename "${f%.zst}")" ;;
        *.ko.gz)  gzip -dc "$f" >"$dest/$(basename "${f%.gz}")" ;;
        *)        die "unexpected module file $f" ;;
    esac
done
# depmod warns about these files if they are missing; they may be empty.
for f in modules.order modules.builtin modules.builtin.modinfo; do
    if [[ -f $modroot/$kver/$f ]]; then
        cp "$modroot/$kver/$f" "$stage/lib/modules/$kver/"
    else
        : >"$stage/lib/modules/$kver/$f"
    fi
done
depmod -b "$stage" "$kver"
# Load list for vm/init, dependencies first; built-in modules are not in it.
for f in $mods; do
    f=${f##*/}
    echo "${f%%.ko*}"
done >"$stage/etc/modules"

tmp=$(mktemp "$out.XXXXXX")
(cd "$stage" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --quiet | gzip -6) >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$out"
