#!/bin/bash
# Do the lab installation paths work? (hil/README.md, "Installing")
#   - DKMS: dkms add, build, install and remove dmaplane with dkms.conf, for
#     the newest kernel in /lib/modules that has a build link (never
#     `uname -r`: the running kernel may have no headers);
#   - make install DESTDIR=...: the files, pkg-config, and a program built
#     against the installed header and library; make uninstall.
# Nothing outside a temporary directory is written: DKMS gets its own trees
# (--dkmstree, --sourcetree, --installtree, --no-depmod) and signing key,
# userspace is built in a scratch BUILD, and a case checks that the host's
# module tree, DKMS tree and /usr/src stayed as they were.
# Prints KTAP; exit status 0 when every case passed. Run as root (dkms).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/dmaplane-install.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
kver=$(ls -1d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1 | cut -d/ -f4)
version=$(sed -n 's/^#define DMAPLANE_MODULE_VERSION "\(.*\)"/\1/p' "$root/src/module/dmaplane.h")

n=0 status=0
# One case: its number, its result, the tail of LOG when it failed.
result() { # status name [log]
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		[ -z "${3:-}" ] || tail -n 15 "$3" | sed 's/^/# /'
		echo "not ok $n $2"
		status=1
	fi
}
skip() { n=$((n + 1)); echo "ok $n $1 # SKIP $2"; }

echo "KTAP version 1"
echo "# suite: install"
echo "1..11"
echo "# kernel $kver, dmaplane $version"

touch "$tmp/marker"
grep -qx "PACKAGE_VERSION=\"$version\"" "$root/dkms.conf"
result $? dkms_conf_version_is_module_version

dkms_cases="dkms_add dkms_build dkms_install installed_module_matches_kernel dkms_status_and_remove"
if ! command -v dkms >/dev/null; then
	for c in $dkms_cases; do skip "$c" "no dkms (make deps installs it)"; done
elif [ -z "$kver" ]; then
	for c in $dkms_cases; do skip "$c" "no kernel with a build link in /lib/modules"; done
else
	# The source tree an administrator copies to /usr/src/dmaplane-VERSION.
	# DKMS's trees must exist, the install tree with the kernel's directory.
	mkdir -p "$tmp/src/dmaplane-$version" "$tmp/dkms" "$tmp/install/$kver"
	(cd "$root" && cp -r --parents dkms.conf src/module src/include "$tmp/src/dmaplane-$version/")
	trees=(--dkmstree "$tmp/dkms" --sourcetree "$tmp/src" --installtree "$tmp/install")
	mv=(-m dmaplane -v "$version")
	# DKMS signs what it builds, making a key where these say.
	export mok_signing_key=$tmp/mok.key mok_certificate=$tmp/mok.pub
	dkms add "${mv[@]}" "${trees[@]}" >"$tmp/add.log" 2>&1
	result $? dkms_add "$tmp/add.log"
	dkms build "${mv[@]}" -k "$kver" "${trees[@]}" >"$tmp/build.log" 2>&1
	result $? dkms_build "$tmp/build.log"
	dkms install "${mv[@]}" -k "$kver" --no-depmod "${trees[@]}" >"$tmp/install.log" 2>&1
	result $? dkms_install "$tmp/install.log"
	ko=$(find "$tmp/install/$kver/updates/dkms" -name 'dmaplane.ko*' 2>/dev/null | head -n 1)
	{
		modinfo -F vermagic "$ko" && modinfo -F version "$ko"
	} >"$tmp/modinfo.log" 2>&1
	[ -n "$ko" ] && grep -q "^$kver " "$tmp/modinfo.log" && grep -qx "$version" "$tmp/modinfo.log"
	result $? installed_module_matches_kernel "$tmp/modinfo.log"
	dkms status "${mv[@]}" "${trees[@]}" >"$tmp/remove.log" 2>&1 &&
		grep -q "^dmaplane/$version, $kver, .*: installed" "$tmp/remove.log" &&
		dkms remove "${mv[@]}" --all --no-depmod "${trees[@]}" >>"$tmp/remove.log" 2>&1 &&
		[ -n "$ko" ] && [ ! -e "$ko" ] && [ -z "$(dkms status "${mv[@]}" "${trees[@]}")" ]
	result $? dkms_status_and_remove "$tmp/remove.log"
fi
find "/lib/modules/$kver" /var/lib/dkms /usr/src -newer "$tmp/marker" >"$tmp/touched.log" 2>/dev/null
[ ! -s "$tmp/touched.log" ]
result $? host_trees_untouched "$tmp/touched.log"

# make install into DESTDIR, userspace built in a scratch BUILD.
dest=$tmp/dest
prefix=$dest/usr/local
installed() {
	local f ok=0
	for f in "$prefix"/{include/linux/dmaplane.h,include/libdmaplane.h} \
		"$prefix"/{lib/libdmaplane.a,lib/pkgconfig/dmaplane.pc,bin/dmaplanectl} \
		"$dest/etc/udev/rules.d/60-dmaplane.rules"; do
		[ -s "$f" ] || { echo "missing $f"; ok=1; }
	done
	return $ok
}
make -C "$root" --no-print-directory BUILD="$tmp/build" DESTDIR="$dest" install \
	>"$tmp/make-install.log" 2>&1 && installed >>"$tmp/make-install.log"
result $? make_install_files "$tmp/make-install.log"

# pkg-config from the staged tree: the sysroot maps /usr/local into it.
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
{
	pkg-config --modversion dmaplane && pkg-config --cflags --libs dmaplane
} >"$tmp/pkg-config.log" 2>&1 && grep -qx "$version" "$tmp/pkg-config.log" &&
	grep -q -- "-I$prefix/include .*-L$prefix/lib -ldmaplane" "$tmp/pkg-config.log"
result $? pkg_config_cflags_libs "$tmp/pkg-config.log"

cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <libdmaplane.h>

int main(void)
{
	/* The UAPI's constants through the library's header and code. */
	puts(dmaplane_cap_name(DMAPLANE_CAP_VERBS));
	return 0;
}
EOF
# shellcheck disable=SC2046  # pkg-config prints flags to split
cc -std=c11 -Wall -Werror $(pkg-config --cflags dmaplane) -o "$tmp/prog" "$tmp/prog.c" \
	$(pkg-config --libs dmaplane) >"$tmp/prog.log" 2>&1 &&
	[ "$("$tmp/prog" 2>>"$tmp/prog.log")" = verbs ]
result $? program_builds_against_install "$tmp/prog.log"

make -C "$root" --no-print-directory BUILD="$tmp/build" DESTDIR="$dest" uninstall \
	>"$tmp/uninstall.log" 2>&1 && ! find "$dest" -type f | grep . >>"$tmp/uninstall.log"
result $? make_uninstall_removes_all "$tmp/uninstall.log"
exit "$status"
