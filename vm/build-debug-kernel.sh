#!/bin/bash
# Build the debug kernel (KASAN, lockdep, kmemleak, DMA-API debug, KUnit,
# gcov, fault injection) from Debian's linux-source-6.1, or reuse the cached
# build. The cache lives outside the clone, keyed by the source package
# version, the config fragment and this script, so a stale build is never
# used. Prints the cache directory as the last line of stdout:
#   DIR/build                 the O= build tree (KDIR for external modules)
#   DIR/build/arch/x86/boot/bzImage
#   DIR/modules/<kernelrelease>/  installed modules, with a build link
set -euo pipefail

here=$(dirname "$(realpath "$0")")
fragment=$here/debug-kernel.config
tarball=/usr/src/linux-source-6.1.tar.xz
jobs=${JOBS:-$(($(nproc) + 1))}

[ -r "$tarball" ] || { echo "no $tarball: run 'make deps'" >&2; exit 1; }
srcver=$(dpkg-query -W -f '${Version}' linux-source-6.1)
key=$( { echo "$srcver"; cat "$fragment" "$0"; } | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/dmaplane
dir=$cache/kernel-$key

mkdir -p "$cache"
# One builder at a time; a second caller waits and then reuses the result.
exec 9>"$cache/kernel-$key.lock"
flock 9
if [ -e "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi

start=$SECONDS
rm -rf "$dir"
mkdir -p "$dir/src" "$dir/build"
echo "debug kernel: extracting linux-source $srcver" >&2
tar -xf "$tarball" -C "$dir/src" --strip-components=1

kmake() { make -s -C "$dir/src" O="$dir/build" "$@"; }
kmake x86_64_defconfig >/dev/null
"$dir/src/scripts/kconfig/merge_config.sh" -m -O "$dir/build" \
	"$dir/build/.config" "$dir/src/kernel/configs/kvm_guest.config" \
	"$fragment" >/dev/null
kmake olddefconfig >/dev/null

# Kconfig drops options whose dependencies are unmet without a word: every
# line of the fragment must have survived.
missing=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=n) opt=${line%=n}
		grep -qx "# $opt is not set" "$dir/build/.config" ||
			! grep -q "^$opt=" "$dir/build/.config" ||
			{ echo "debug kernel: $opt still set" >&2; missing=1; } ;;
	CONFIG_*) grep -qx "$line" "$dir/build/.config" ||
			{ echo "debug kernel: $line did not stick" >&2; missing=1; } ;;
	esac
done <"$fragment"
[ "$missing" = 0 ] || exit 1

echo "debug kernel: building with -j$jobs (cold builds take 10-25 minutes)" >&2
build_start=$SECONDS
kmake -j"$jobs" bzImage modules
kmake INSTALL_MOD_PATH="$dir/install" modules_install >/dev/null
release=$(kmake kernelrelease)
mkdir -p "$dir/modules"
mv "$dir/install/lib/modules/$release" "$dir/modules/$release"
rm -rf "$dir/install"
ln -sfn "$dir/build" "$dir/modules/$release/build"
echo "$release" >"$dir/kernelrelease"
touch "$dir/.complete"
echo "debug kernel: $release built in $((SECONDS - build_start)) s" \
	"($((SECONDS - start)) s with extraction and config)" >&2
echo "$dir"
