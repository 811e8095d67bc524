#!/bin/bash
# Build dmaplane.ko for one kernel outside the source tree, plus
# dmaplane_kunit.ko when that kernel has KUnit; gcov-instrumented when it has
# CONFIG_GCOV_KERNEL. W=1 and -Werror: not one warning. Kernels without gcov
# (where figures are taken) also get notrace/src/module/dmaplane.ko, built
# with the tracepoints compiled out, to measure what they cost.
#
#   vm/build-modules.sh KDIR OUT
#
# OUT mirrors the sources as symlinks (Kbuild writes objects next to them),
# so builds for several kernels never share an object file.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 KDIR OUT" >&2; exit 2; }
kdir=$1 out=$(realpath -m "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$kdir/.config" ] || { echo "build-modules: no kernel config in $kdir" >&2; exit 1; }

for d in src/module src/include/uapi/linux kunit; do
	mkdir -p "$out/$d"
	for f in "$root/$d"/*.[ch] "$root/$d"/Kbuild; do
		[ -e "$f" ] && ln -sfn "$f" "$out/$d/"
	done
done
# Sources deleted since the last build must not linger.
find "$out" -xtype l -delete

kbuild=(-C "$kdir" W=1 KCFLAGS=-Werror)
gcov=false
grep -q '^CONFIG_GCOV_KERNEL=y' "$kdir/.config" && gcov=true
$gcov && kbuild+=(GCOV_PROFILE=y)
make "${kbuild[@]}" M="$out/src/module" modules
if ! $gcov; then
	mkdir -p "$out/notrace/src/module"
	for f in "$root"/src/module/*.[ch] "$root"/src/module/Kbuild; do
		ln -sfn "$f" "$out/notrace/src/module/"
	done
	ln -sfn "$out/src/include" "$out/notrace/src/include"
	find "$out/notrace" -xtype l -delete
	make "${kbuild[@]}" M="$out/notrace/src/module" DMAPLANE_TRACE=0 modules
fi
if grep -q '^CONFIG_KUNIT=y' "$kdir/.config"; then
	make "${kbuild[@]}" M="$out/kunit" \
		KBUILD_EXTRA_SYMBOLS="$out/src/module/Module.symvers" modules
fi
