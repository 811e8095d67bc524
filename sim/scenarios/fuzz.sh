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
seconds=${DP_FUZZ_SECONDS:-300}
threads=${DP_FUZZ_THREADS:-4}
seed=${DP_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ktap=$results/fuzz.ktap
. "$root/tests/ktap.sh"
. "$root/sim/scenarios/guest-checks.sh"
ktap_begin fuzz 4

hung_task_detector "${DP_FUZZ_HUNG_SECS:-60}" >>"$ktap"
if ! module_load; then
	ktap_single "$ktap" fuzz "not ok" setup "cannot load $ko"
	exit 1
fi

# Exit codes: 0 clean, 1 findings, 2 cannot run, 3 fuzzer crash, 4 hang.
"$build/tests/dpfuzz" --seed "$seed" --duration "$seconds" \
	--threads "$threads" --patterns "$root/tests/kernel-log-bad.re" \
	>"$results/dpfuzz.txt" 2>&1
rc=$?
summary="seed $seed, $seconds s, $threads threads, exit $rc: see dpfuzz.txt; again: make fuzz SEED=$seed DURATION=$seconds"
if [ "$rc" = 0 ]; then
	result ok dpfuzz "$(dpfuzz_calls) calls, seed $seed, $seconds s, $threads threads"
else
	dpfuzz_findings
	result "not ok" dpfuzz "$summary"
fi

# The outside fuzzer: its one line says what it did, or why it failed.
line=$("$root/tests/fuzz/trinity.sh" "${DP_TRINITY_SECONDS:-60}" "$results")
case $? in
0) result ok trinity "$line" ;;
2) result ok "trinity # SKIP $line" ;;
*) result "not ok" trinity "$line; see trinity.txt" ;;
esac

counters_zero dpfuzz_counters_zero
kmemleak_clean dpfuzz_kmemleak_clean
cat "$ktap"
exit "$failed"
