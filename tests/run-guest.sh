#!/bin/bash
# Runs inside a sim guest (or on a hil host): load dmaplane.ko, run every
# userspace suite, keep each suite's KTAP in $DMAPLANE_RESULTS/<suite>.ktap,
# then print the machine's topology and benchmark figures (*.json, *.txt).
# Exit status: 0 when every suite passed.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
# Order matters: lifecycle reloads the module and leaves it loaded.
# DMAPLANE_SUITES runs a subset, in this order (hil/run.sh: the suites whose
# hardware is present); --list prints the whole list.
all_suites="core buffer numa dmabuf rdma verbs flow gpu privilege model kv_manifest kvxfer hostile python faults lifecycle"
if [ "${1:-}" = --list ]; then echo "$all_suites"; exit 0; fi
read -ra suites <<<"${DMAPLANE_SUITES:-$all_suites}"
build=${DMAPLANE_BUILD:-$root/build}
results=${DMAPLANE_RESULTS:?DMAPLANE_RESULTS must name a results directory}
export DMAPLANE_KO=${DMAPLANE_KO:-$build/modules/$(uname -r)/src/module/dmaplane.ko}
export DMAPLANE_LOG_PATTERNS=$root/tests/kernel-log-bad.re
export DMAPLANE_CTL=$build/tools/dmaplanectl

# A setup failure becomes a failed KTAP case so the host counts it.
. "$root/tests/ktap.sh"
setup_failed() {
	ktap_single "$results/setup.ktap" setup "not ok" "$1"
	exit 1
}

modprobe -a ib_core rdma_cm || setup_failed "modprobe_ib_core_rdma_cm"
# A sim GPU (QEMU ivshmem-plain, vm/launch.sh --gpu-mem) is driven only
# when asked for: on a lab host such a device would not be ours.
params=()
for dev in /sys/bus/pci/devices/*; do
	[ "$(cat "$dev/vendor" 2>/dev/null)" = 0x1af4 ] &&
		[ "$(cat "$dev/device")" = 0x1110 ] && params=(sim_gpu=1)
done
# The lifecycle suite reloads the module with these.
export DMAPLANE_PARAMS="${params[*]}"
if [ ! -e /sys/module/dmaplane ]; then
	insmod "$DMAPLANE_KO" "${params[@]}" || setup_failed "insmod_dmaplane"
fi

# Debug kernel: whatever kmemleak suspects from boot is not ours; forget it.
kmemleak=/sys/kernel/debug/kmemleak
[ -w "$kmemleak" ] && echo clear >"$kmemleak"

# The Python package's tests that need the module (pytest -m device; the
# host runs the rest: sim/run.sh), `make python` built the extension in
# place; KTAP through tests/pytest_ktap.py, pytest's output in python.log.
# A run that ends before pytest wrote its KTAP is a failure.
python_suite() {
	local ktap=$results/python.ktap rc
	rm -f "$ktap"
	PYTHONPATH=$root/python:$root/tests PYTHONDONTWRITEBYTECODE=1 \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider -p pytest_ktap \
		--ktap "$ktap" -m device "$root/python/tests" \
		>"$results/python.log" 2>&1
	rc=$?
	[ -s "$ktap" ] || ktap_single "$ktap" python "not ok" pytest_ran \
		"pytest exited $rc without results: see python.log" >/dev/null
	return "$rc"
}

status=0
for suite in "${suites[@]}"; do
	if [ "$suite" = python ]; then
		python_suite
	else
		"$build/tests/${suite}_test" > "$results/$suite.ktap" 2>&1
	fi
	rc=$?
	cat "$results/$suite.ktap"
	[ "$rc" -eq 0 ] || status=1
done

# Figures, not tests (they fail only when a benchmark cannot run): one
# trip through the ioctl dispatcher; the NUMA bandwidth matrix of this
# machine; building and DMA-mapping a scatterlist, 4 KiB pages against
# 2 MiB chunks; submitting through the batch channel against one ioctl;
# loopback RDMA WRITE. JSON for tools, tables for people.
ctl=$build/tools/dmaplanectl
bench() { # name args...: one run, its table and its JSON
	local name=$1
	shift
	"$ctl" "$@" --json-out "$results/$name.json" >"$results/$name.txt" ||
		status=1
}
bench echo_bench echo-bench --iterations 20000
"$ctl" topo >"$results/topology.txt" || status=1
"$ctl" rdma >"$results/rdma_devices.txt" || status=1
bench numa_bench numa-bench --size 16M --op copy --passes 3
bench huge_bench huge-bench --sizes 16M,64M,256M --iterations 3
bench submit_bench submit-bench --iterations 64000
# BAR tiers on the sim GPU: write-combining and uncached mappings against
# host memcpy.
[ ${#params[@]} -gt 0 ] && bench gpu_bench gpu-bench --size 16M --iterations 3
# A short loopback WRITE matrix where soft-RoCE is up (make bench: the full one).
if [ -n "${DP_GUEST_IP:-}" ] && [ -n "$(ls /sys/class/infiniband 2>/dev/null)" ]; then
	bench rdma_bench rdma-bench --addr "$DP_GUEST_IP" --sizes 4K,1M \
		--depths 1,16 --time-ms 500 --iterations 200
	# Checksummed streaming through credits on loopback, watched by
	# `dmaplanectl top` (two refreshes) while it runs.
	"$ctl" stream --serve --addr "$DP_GUEST_IP" --port 18530 \
		--json-out "$results/stream_serve.json" \
		>"$results/stream_serve.txt" 2>&1 &
	serve=$!
	bench stream stream --addr "$DP_GUEST_IP" --port 18530 --duration 4 \
		--size 64K --qd 16 &
	send=$!
	sleep 2
	"$ctl" top --count 2 >"$results/top.txt" 2>&1 || status=1
	wait "$send" || status=1
	wait "$serve" || status=1
fi

# kmemleak reports only objects older than 5 s, and a second scan drops
# objects that were referenced from a register or stack during the first.
# The host's kernel-log check fails the run on any "unreferenced object".
if [ -w "$kmemleak" ]; then
	sleep 6
	echo scan >"$kmemleak" && echo scan >"$kmemleak"
	cat "$kmemleak" >"$results/kmemleak.txt"
fi
"$root/vm/guest-save-gcov.sh" || status=1
exit "$status"
