#!/bin/bash
# One host's part of a hil run, from the repository root, as root; hil/run.sh
# runs it here or over ssh on a lab host.
#
#   hil/host.sh prepare OUT                   build what is stale, load
#                                             dmaplane.ko, probe the host
#   hil/host.sh pair decode|prefill OUT ADDR PEER
#                                             the two-host suites: verbs_pair
#                                             and the KV-cache demo
#   hil/host.sh finish OUT RC                 the kernel log since prepare,
#                                             and this host's verdicts
#
# Every check becomes a one-case KTAP file in OUT (hil_*.ktap, pair_*.ktap,
# verbs_pair.ktap) so the runner counts it. DMAPLANE_BUILD (default build/)
# is where binaries are; DMAPLANE_KO names a module to load instead of
# building one (e.g. the DKMS-installed one).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build=${DMAPLANE_BUILD:-$root/build}
export DMAPLANE_BUILD=$build
. "$root/tests/ktap.sh"
. "$root/hil/probe.sh"

check() { # OUT ok|"not ok" name [diagnostic, may span lines]
	local diag=${4:-}
	ktap_single "$1/hil_$3.ktap" hil "$2" "$3" "${diag//$'\n'/$'\n# '}" >/dev/null
}

# A module that is built already is used as it is when no source is newer
# (in sim guests the host built it); userspace is rebuilt when make says
# something is out of date. Then the module is (re)loaded from this tree.
prepare() {
	local out=$1 kver ko why ok params=() marker err so
	mkdir -p "$out" || return 1
	kver=$(uname -r)
	# finish keeps the kernel log from here on.
	marker="dmaplane-hil: run $(date +%s)-$$ begins"
	echo "$marker" >/dev/kmsg && echo "$marker" >"$out/kmsg_marker"

	ko=${DMAPLANE_KO:-$build/modules/$kver/src/module/dmaplane.ko}
	ok=ok
	if [ -n "${DMAPLANE_KO:-}" ]; then
		why="DMAPLANE_KO=$ko, not built"
	elif [ -e "$ko" ] && [ -z "$(find "$root/src/module" "$root/src/include" \
		-newer "$ko" -print -quit)" ]; then
		why="$ko is newer than its sources"
	elif [ ! -d "/lib/modules/$kver/build" ]; then
		ok="not ok" why="no /lib/modules/$kver/build: install linux-headers-$kver"
	else
		why="built for $kver, see build_module.log"
		make -C "$root" --no-print-directory module KVER="$kver" \
			BUILD="$build" >"$out/build_module.log" 2>&1 || ok="not ok"
	fi
	check "$out" "$ok" module_ready "$why"

	ok=ok why="up to date"
	if ! make -C "$root" -q user BUILD="$build" >/dev/null 2>&1; then
		why="built, see build_user.log"
		make -C "$root" --no-print-directory user BUILD="$build" \
			>"$out/build_user.log" 2>&1 || ok="not ok"
	fi
	# The python suite's extension (make python), when older than its
	# sources. Without it only that suite fails (it says so), not the C ones.
	so=$(find "$root/python/dmaplane" -name '_native*.so' -print -quit)
	if [ -z "$so" ] || [ -n "$(find "$root/python/src" "$root/python/setup.py" \
		"$root/src/lib" "$root/src/include" -newer "$so" -print -quit)" ]; then
		if make -C "$root" --no-print-directory python BUILD="$build" \
			>"$out/build_python.log" 2>&1; then
			why="$why; the Python extension built"
		else
			why="$why; the Python extension did not build (build_python.log)"
		fi
	fi
	check "$out" "$ok" userspace_ready "$why"

	# A dmaplane already loaded (an older build, DKMS) is not the one
	# under test; the suites hold no file open yet, but udev might.
	ok=ok why="$ko"
	modprobe -a ib_core rdma_cm || ok="not ok" why="modprobe ib_core rdma_cm failed"
	for _ in $(seq 30); do
		[ -e /sys/module/dmaplane ] || break
		rmmod dmaplane 2>/dev/null || sleep 1
	done
	[ -n "$(sim_gpus)" ] && params=(sim_gpu=1)
	if [ "$ok" = ok ] && [ -e /sys/module/dmaplane ]; then
		ok="not ok" why="an older dmaplane stays loaded (rmmod failed)"
	elif [ "$ok" = ok ] && ! err=$(insmod "$ko" "${params[@]}" 2>&1); then
		ok="not ok" why="could not load $ko: $err"
	fi
	check "$out" "$ok" module_loaded "$why"

	"$root/hil/probe.sh" "$out"
	cat "$out/probe.txt"
	! grep -q '^not ok' "$out"/hil_*.ktap
}

pair() {
	local role=$1
	results=$2 DP_GUEST_IP=$3 peer=$4 status=0
	local verbs=$build/tests/verbs_pair_test port=18517
	ktap() { ktap_single "$results/pair_$2.ktap" hil_pair "$@"; }
	. "$root/tests/kv-demo.sh"
	# The same order on both sides: each step connects to the other's.
	if [ "$role" = decode ]; then
		kv_serve
		"$verbs" --serve "$DP_GUEST_IP" "$port" >"$results/verbs_pair.ktap" 2>&1 || status=1
	else
		kv_run
		"$verbs" --connect "$peer" "$port" >"$results/verbs_pair.ktap" 2>&1 || status=1
	fi
	return "$status"
}

# The kernel log since prepare's marker (all of it if the ring buffer
# wrapped), checked for warnings, BUGs and sanitizer reports.
finish() {
	local out=$1 rc=$2 marker bad ok=ok
	marker=$(cat "$out/kmsg_marker" 2>/dev/null)
	dmesg | awk -v m="${marker:-dmaplane-hil: none}" '
		{ all[NR] = $0 } index($0, m) { start = NR }
		END { for (i = start ? start : 1; i <= NR; i++) print all[i] }' >"$out/dmesg.txt"
	bad=$(grep -E -A 12 -f "$root/tests/kernel-log-bad.re" "$out/dmesg.txt" | head -n 60)
	[ -z "$bad" ] || ok="not ok"
	check "$out" "$([ "$rc" = 0 ] && echo ok || echo "not ok")" command_succeeded "exit status $rc"
	check "$out" "$ok" kernel_log_clean "$bad"
}

usage() { echo "usage: hil/host.sh prepare|pair|finish ... (see the file)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "hil/host.sh: run as root (it loads dmaplane.ko)" >&2; exit 2; }
case ${1:-} in
prepare) [ $# -eq 2 ] || usage; prepare "$2" ;;
pair)
	[ $# -eq 5 ] && [[ $2 =~ ^(decode|prefill)$ ]] || usage
	pair "$2" "$3" "$4" "$5" ;;
finish) [ $# -eq 3 ] || usage; finish "$2" "$3" ;;
*) usage ;;
esac
