#!/bin/bash
# The UAPI fuzzers in one guest (the debug kernel's: KASAN, lockdep,
# kmemleak, DMA-API debug), with the hung-task detector at
# $DP_FUZZ_HUNG_SECS. Writes $DMAPLANE_RESULTS/fuzz.ktap:
#   dpfuzz   tests/fuzz (structure-aware): $DP_FUZZ_SECONDS (default 300)
#            with $DP_FUZZ_THREADS threads (default 4) from $DP_FUZZ_SEED
#            (default: a random one); its seed is in the case's line, so
#            a failure says how to run it again;
#   trinity  Debian's trinity against the device for $DP_TRINITY_SECONDS
#            (default 60; tests/fuzz/trinity.sh): it must run and reach
#            the module's handlers;
#   dpfuzz_counters_zero, dpfuzz_kmemleak_clean: after both, with the
#            module unloaded and loaded again, nothing is left over.
# The host's kernel-log check (sim/run.sh) fails the run on any sanitizer
# report, lockdep splat or "blocked for more than" in the guest's log.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
results=${DMAPLANE_RESULTS:?}
build=${DMAPLANE_BUILD:-$root/build}
ko=$build/modules/$(uname -r)/src/module/dmaplane.ko
seconds=${DP_FUZZ_SECONDS:-300}
threads=${DP_FUZZ_THREADS:-4}
seed=${DP_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
hung=${DP_FUZZ_HUNG_SECS:-60}
kmemleak=/sys/kernel/debug/kmemleak
info=/sys/kernel/debug/dmaplane/info
ktap=$results/fuzz.ktap
. "$root/tests/ktap.sh"

n=0 failed=0
{ echo "KTAP version 1"; echo "# suite: fuzz"; echo "1..4"; } >"$ktap"
result() { # ok|"not ok" name [diagnostic]
	n=$((n + 1))
	[ -z "${3:-}" ] || echo "# $3" >>"$ktap"
	echo "$1 $n $2" >>"$ktap"
	[ "$1" = ok ] || failed=1
}

# A task stuck in the kernel this long is reported ("blocked for more
# than"), which the host's log check turns into a failure.
if [ -w /proc/sys/kernel/hung_task_timeout_secs ]; then
	echo "$hung" >/proc/sys/kernel/hung_task_timeout_secs
	echo 0 >/proc/sys/kernel/hung_task_panic
else
	echo "# no hung-task detector in this kernel" >>"$ktap"
fi
sim_gpu=
for dev in /sys/bus/pci/devices/*; do
	[ "$(cat "$dev/vendor" 2>/dev/null)" = 0x1af4 ] &&
		[ "$(cat "$dev/device")" = 0x1110 ] && sim_gpu=sim_gpu=1
done
if ! modprobe -a ib_core rdma_cm || ! insmod "$ko" $sim_gpu; then
	ktap_single "$ktap" fuzz "not ok" setup "cannot load $ko"
	exit 1
fi
[ -w "$kmemleak" ] && echo clear >"$kmemleak"

# Exit codes: 0 clean, 1 findings, 2 cannot run, 3 fuzzer crash, 4 hang.
"$build/tests/dpfuzz" --seed "$seed" --duration "$seconds" \
	--threads "$threads" --patterns "$root/tests/kernel-log-bad.re" \
	>"$results/dpfuzz.txt" 2>&1
rc=$?
summary="seed $seed, $seconds s, $threads threads, exit $rc: see dpfuzz.txt; again: make fuzz SEED=$seed DURATION=$seconds"
if [ "$rc" = 0 ]; then
	result ok dpfuzz "$(grep -m1 '^  total' "$results/dpfuzz.txt" |
		awk '{print $2}') calls, seed $seed, $seconds s, $threads threads"
else
	grep -E 'FINDING|hang|crash' "$results/dpfuzz.txt" | head -20 |
		sed 's/^/# /' >>"$ktap"
	result "not ok" dpfuzz "$summary"
fi

# The outside fuzzer: its one line says what it did, or why it failed.
line=$("$root/tests/fuzz/trinity.sh" "${DP_TRINITY_SECONDS:-60}" "$results")
case $? in
0) result ok trinity "$line" ;;
2) result ok "trinity # SKIP $line" ;;
*) result "not ok" trinity "$line; see trinity.txt" ;;
esac

# What the fuzzers' processes left is gone with them: every module
# counter is back at zero, and the module unloads and loads again.
left=$(awk '$1 ~ /^(open_contexts|buffers|buffer_bytes|mappings|exports|attachments|endpoints|mrs|pinned_pages|gpu_pinned_bytes):$/ && $2 != 0' "$info")
if [ -r "$info" ] && [ -z "$left" ] && rmmod dmaplane &&
	insmod "$ko" $sim_gpu; then
	result ok dpfuzz_counters_zero
else
	result "not ok" dpfuzz_counters_zero "left: $(echo "$left" | tr '\n' ' ')"
fi

# kmemleak reports objects older than 5 s; the second scan drops those a
# register or stack still pointed to during the first.
if [ -w "$kmemleak" ]; then
	sleep 6
	echo scan >"$kmemleak" && echo scan >"$kmemleak"
	cat "$kmemleak" >"$results/kmemleak.txt"
	if [ -s "$results/kmemleak.txt" ]; then
		result "not ok" dpfuzz_kmemleak_clean "see kmemleak.txt"
	else
		result ok dpfuzz_kmemleak_clean
	fi
else
	result ok "dpfuzz_kmemleak_clean # SKIP no kmemleak in this kernel"
fi
cat "$ktap"
exit "$failed"
