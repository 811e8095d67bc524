#!/bin/bash
# Runs inside a debug-kernel guest: load dmaplane.ko, then dmaplane_kunit.ko
# (its suites run while it loads), and save each suite's results as flat
# KTAP (one line per case) in $DMAPLANE_RESULTS/kunit-<suite>.ktap.
#
# The suites registered under /sys/kernel/debug/kunit/ name what ran; their
# results are read from the kernel log, because 6.1 keeps only a fixed-size
# log per case in debugfs and cuts the result line of a case whose failure
# messages fill it.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
mods=${DMAPLANE_BUILD:-$root/build}/modules/$(uname -r)
results=${DMAPLANE_RESULTS:?DMAPLANE_RESULTS must name a results directory}

. "$root/tests/ktap.sh"
setup_failed() { # name [diagnostic]
	ktap_single "$results/kunit-setup.ktap" kunit_setup "not ok" "$@"
	exit 1
}

[ -d /sys/kernel/debug/kunit ] ||
	setup_failed kernel_has_kunit "this kernel has no KUNIT_DEBUGFS: use the debug kernel"
modprobe -a ib_core rdma_cm || setup_failed "modprobe_ib_core_rdma_cm"
insmod "$mods/src/module/dmaplane.ko" || setup_failed "insmod_dmaplane"
insmod "$mods/kunit/dmaplane_kunit.ko" || setup_failed "insmod_dmaplane_kunit"

log=$(dmesg --notime)
status=0
found=0
for dir in /sys/kernel/debug/kunit/dmaplane_*/; do
	[ -d "$dir" ] || continue
	found=1
	suite=$(basename "$dir")
	# The suite's block is indented 4 spaces and closed by its own
	# top-level "ok N suite" line.
	awk -v s="$suite" '
		$0 == "    # Subtest: " s { on = 1; print "KTAP version 1"; print substr($0, 5); next }
		on && /^(not )?ok [0-9]+ / { exit }
		on && /^    [^ ]/ { print substr($0, 5) }' <<<"$log" \
		>"$results/kunit-$suite.ktap"
	cat "$results/kunit-$suite.ktap"
	grep -q '^not ok' "$results/kunit-$suite.ktap" && status=1
done
[ "$found" = 1 ] || setup_failed "kunit_suites_registered"

rmmod dmaplane_kunit && rmmod dmaplane || status=1
"$root/vm/guest-save-gcov.sh" || status=1
exit "$status"
