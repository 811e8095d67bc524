# shellcheck shell=bash
# What the long-running scenarios (fuzz.sh, soak.sh) do around their work
# in a guest, sourced by them. They provide $root, $results, $build and
# $ktap (their KTAP file).

# $ktap's header; then result() adds one case at a time.
ktap_begin() { # suite cases
	n=0 failed=0
	printf 'KTAP version 1\n# suite: %s\n1..%s\n' "$1" "$2" >"$ktap"
}

result() { # ok|"not ok" name [diagnostic]
	n=$((n + 1))
	[ -z "${3:-}" ] || echo "# $3" >>"$ktap"
	echo "$1 $n $2" >>"$ktap"
	[ "$1" = ok ] || failed=1
}

# The calls dpfuzz made (its summary's total in dpfuzz.txt).
dpfuzz_calls() {
	grep -m1 '^  total' "$results/dpfuzz.txt" | awk '{print $2}'
}

# What dpfuzz found (its dpfuzz.txt), as diagnostics of the next case.
dpfuzz_findings() {
	grep -E 'FINDING|hang|crash' "$results/dpfuzz.txt" | head -20 |
		sed 's/^/# /' >>"$ktap"
}

ko=$build/modules/$(uname -r)/src/module/dmaplane.ko
kmemleak=/sys/kernel/debug/kmemleak
info=/sys/kernel/debug/dmaplane/info

# A task stuck in the kernel @1 seconds is reported ("blocked for more
# than"), which the host's log check turns into a failure.
hung_task_detector() { # seconds
	if [ -w /proc/sys/kernel/hung_task_timeout_secs ]; then
		echo "$1" >/proc/sys/kernel/hung_task_timeout_secs
		echo 0 >/proc/sys/kernel/hung_task_panic
	else
		echo "# no hung-task detector in this kernel"
	fi
}

# Load the module (driving the sim GPU when there is one); forget what
# kmemleak suspected from boot.
sim_gpu=
module_load() {
	local dev
	for dev in /sys/bus/pci/devices/*; do
		[ "$(cat "$dev/vendor" 2>/dev/null)" = 0x1af4 ] &&
			[ "$(cat "$dev/device")" = 0x1110 ] && sim_gpu=sim_gpu=1
	done
	modprobe -a ib_core rdma_cm && insmod "$ko" $sim_gpu || return 1
	[ -w "$kmemleak" ] && echo clear >"$kmemleak"
	return 0
}

# What the work's processes left is gone with them: every module counter
# of live objects is back at zero, and the module unloads and loads again.
counters_zero() { # case name
	local left
	left=$(awk '$1 ~ /^(open_contexts|buffers|buffer_bytes|mappings|exports|attachments|endpoints|mrs|pinned_pages|gpu_pinned_bytes):$/ && $2 != 0' "$info")
	if [ -r "$info" ] && [ -z "$left" ] && rmmod dmaplane &&
		insmod "$ko" $sim_gpu; then
		result ok "$1"
	else
		result "not ok" "$1" "left: $(echo "$left" | tr '\n' ' ')"
	fi
}

# kmemleak reports objects older than 5 s; the second scan drops those a
# register or stack still pointed to during the first.
kmemleak_clean() { # case name
	if [ -w "$kmemleak" ]; then
		sleep 6
		echo scan >"$kmemleak" && echo scan >"$kmemleak"
		cat "$kmemleak" >"$results/kmemleak.txt"
		if [ -s "$results/kmemleak.txt" ]; then
			result "not ok" "$1" "see kmemleak.txt"
		else
			result ok "$1"
		fi
	else
		result ok "$1 # SKIP no kmemleak in this kernel"
	fi
}
