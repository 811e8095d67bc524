#!/bin/bash
# The sim: boot QEMU guests, run every layer in them, print one table and
# the closing "N passed, N failed, N skipped". Exit status 1 on any failure.
#
#   sim/run.sh [--kernel stock|debug]... [--topologies "1node 2node"]
#              [--no-pair] [--kunit-only] [--no-kunit] [--fuzz-only]
#              [--no-fuzz] [--soak-only] [--no-soak] [--out DIR]
#              [--timeout SEC]
#
# Per kernel (repeat --kernel for several; default stock):
#   stock  one guest per NUMA topology fixture running tests/run-guest.sh,
#          then a two-guest soft-RoCE pair (sim/scenarios/rxe_pair.sh);
#   debug  vm/build-debug-kernel.sh's instrumented kernel (built first when
#          not cached): the KUnit suites, then the topology guests (1node
#          and 4node unless --topologies; the suites each runs: below). Its
#          KASAN/lockdep/kmemleak/DMA-API reports fail the run through the
#          kernel-log check below. Then the UAPI fuzzers
#          (sim/scenarios/fuzz.sh) for DP_FUZZ_SECONDS (default 300),
#          and the two-guest soak (sim/scenarios/soak.sh: streaming,
#          KV-cache transfers and dpfuzz at once) for DP_SOAK_SECONDS
#          (default 120 here; make soak: 300).
# --kunit-only runs just the KUnit guest (debug kernel), --no-kunit skips it;
# --fuzz-only just the fuzz guest (debug kernel), --no-fuzz skips it;
# --soak-only just the soak's guests (debug kernel), --no-soak skips them.
# When debug guests saved gcov data, coverage/report.sh adds its summary.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/sim
# A debug-kernel topology guest ran past 900 s once the hostile and
# kvxfer server cases came; longer streaming (DP_STREAM_SECONDS, the pair
# scenario) gets the time it needs.
timeout=$((1800 + ${DP_STREAM_SECONDS:-0}))
kernels=()
topologies=()
pair=1
kunit_only=0
kunit=1
fuzz=1
fuzz_only=0
soak=1
soak_only=0

while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels+=("$2"); shift ;;
	--topologies) read -ra topologies <<<"$2"; shift ;;
	--no-pair) pair=0 ;;
	--kunit-only) kunit_only=1; kernels=(debug) ;;
	--no-kunit) kunit=0 ;;
	--fuzz-only) fuzz_only=1; kernels=(debug) ;;
	--no-fuzz) fuzz=0 ;;
	--soak-only) soak_only=1; kernels=(debug) ;;
	--no-soak) soak=0 ;;
	--out) out=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	*) echo "sim/run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
[ ${#kernels[@]} -gt 0 ] || kernels=(stock)
all_topologies=()
for f in "$root"/fixtures/topologies/*.conf; do
	all_topologies+=("$(basename "$f" .conf)")
done

rm -rf "$out"
mkdir -p "$out"
cd "$root" || exit 2

# Host-side verdicts for one guest, as KTAP next to the guest's own: did its
# command finish, and is its kernel log (console, dmesg, kmemleak report)
# free of warnings, BUGs and sanitizer reports?
host_checks() { # guest_dir
	local dir=$1 ok_run=ok ok_log=ok bad
	[ "$(cat "$dir/rc" 2>/dev/null)" = 0 ] || ok_run="not ok"
	bad=$(cat "$dir/console.log" "$dir/dmesg.txt" "$dir/kmemleak.txt" \
		2>/dev/null | grep -E -A 12 -f "$root/tests/kernel-log-bad.re" |
		head -n 60)
	[ -f "$dir/dmesg.txt" ] && [ -z "$bad" ] || ok_log="not ok"
	{
		printf 'KTAP version 1\n# suite: host\n1..2\n'
		printf '%s 1 guest_command_succeeded\n' "$ok_run"
		[ -z "$bad" ] || printf '# %s\n' "${bad//$'\n'/$'\n# '}"
		printf '%s 2 guest_kernel_log_clean\n' "$ok_log"
	} >"$dir/host.ktap"
	[ -z "$bad" ] || { echo "  kernel log of ${dir#"$out"/}:"; printf '    %s\n' "${bad//$'\n'/$'\n    '}"; }
}

. "$root/tests/ktap-count.sh"
. "$root/tests/ktap.sh"

run() { # name launch-args... -- command
	local name=$1
	shift
	echo "sim: $name"
	"${launch[@]}" --results "$out/$name" "$@" 2>"$out/$name.launch.err"
	sed 's/^/  /' "$out/$name.launch.err"
	for dir in "$out/$name"/guest*; do
		host_checks "$dir"
	done
}

# The debug kernel's topology guests (see the loop below).
debug_suites_first=$(tests/run-guest.sh --list | tr ' ' '\n' | grep -vx python | xargs)
debug_suites_numa="core buffer numa dmabuf gpu privilege faults lifecycle"

# The UAPI fuzzers' guest (sim/scenarios/fuzz.sh): its run plus the
# usual boot and teardown time.
fuzz_guest() {
	run debug-fuzz --rxe --gpu-mem 64 \
		--timeout $((900 + ${DP_FUZZ_SECONDS:-300})) \
		-- sim/scenarios/fuzz.sh
}

# The soak's two guests (sim/scenarios/soak.sh): its run, the decode
# side's wait for the last request, boot and teardown.
export DP_SOAK_SECONDS=${DP_SOAK_SECONDS:-120}
soak_guests() {
	run debug-soak --guests 2 --rxe --smp 1 \
		--timeout $((1200 + DP_SOAK_SECONDS)) \
		-- sim/scenarios/soak.sh
}

# On the host, with the full stock sim: the nvidia-p2p provider compiles
# (against fixtures/nvidia's declarations: there is no NVIDIA driver here),
# and the lab installation paths work (DKMS, make install).
host_build_checks() {
	local dir=$out/stock-host/host
	mkdir -p "$dir"
	if NVIDIA_SRC=$root/fixtures/nvidia "$root/vm/build-modules.sh" \
		"/lib/modules/$KVER/build" "$root/build/nvidia-check" \
		>"$dir/nvidia_check.log" 2>&1 &&
		[ -f "$root/build/nvidia-check/src/module/gpu_nvidia.o" ]; then
		ktap_single "$dir/nvidia_build.ktap" host ok nvidia_p2p_provider_builds
	else
		ktap_single "$dir/nvidia_build.ktap" host "not ok" \
			nvidia_p2p_provider_builds "see $dir/nvidia_check.log"
	fi
	"$root/hil/dkms-check.sh" >"$dir/install.ktap" 2>&1
	# The Python tests that need no module (the KV protocol against C
	# vectors, the model against dpinfer, the demo's arguments); the
	# guests run the others.
	PYTHONPATH=$root/python:$root/tests PYTHONDONTWRITEBYTECODE=1 \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider -p pytest_ktap \
		--ktap "$dir/python_host.ktap" --ktap-suite python_host \
		-m "not device" "$root/python/tests" >"$dir/python_host.log" 2>&1
	[ -s "$dir/python_host.ktap" ] || ktap_single "$dir/python_host.ktap" \
		python_host "not ok" pytest_ran "see $dir/python_host.log"
	# The Python package installs offline into a virtual environment that
	# sees Debian's numpy and torch (README, "Python") and imports there.
	if { /usr/bin/python3 -m venv --system-site-packages "$dir/venv" &&
		"$dir/venv/bin/pip" install --no-index "$root/python" &&
		(cd / && "$dir/venv/bin/python" -c 'import dmaplane.infer'); } \
		>"$dir/python_install.log" 2>&1; then
		ktap_single "$dir/python_install.ktap" host ok python_package_installs
	else
		ktap_single "$dir/python_install.ktap" host "not ok" \
			python_package_installs "see $dir/python_install.log"
	fi
}

for kernel in "${kernels[@]}"; do
	if [ "$kernel" = stock ] && [ "$pair" = 1 ] && [ -n "${KVER:-}" ]; then
		echo "sim: stock-host (nvidia-p2p build, dkms, make install)"
		host_build_checks
	fi
	launch=("$root/vm/launch.sh" --timeout "$timeout")
	case $kernel in
	stock)
		[ -n "${KVER:-}" ] && launch+=(--kver "$KVER") ;;
	debug)
		kdir=$("$root/vm/build-debug-kernel.sh" | tail -n 1) || exit 1
		# no5lvl: with 5-level paging (-cpu max has LA57) an interrupt
		# that lands while identify_cpu() rebuilds the boot CPU's
		# feature bits sees LA57 off, and KASAN reports its own direct
		# map as a wild access (seen once in six boots under load).
		# The RCU stall timeout (21 s) is a hardware figure: under TCG
		# with KASAN soft-RoCE's loopback requester, checksumming
		# every packet in one softirq, once ran 24 s (verbs suite).
		# A real stall still shows, after 300 s.
		launch+=(--kernel "$kdir/build/arch/x86/boot/bzImage" --no-pvh
			--append "no5lvl rcupdate.rcu_cpu_stall_timeout=300"
			--modules "$kdir/modules"
			--kver "$(cat "$kdir/kernelrelease")") ;;
	*)
		echo "sim/run.sh: --kernel must be stock or debug" >&2; exit 2 ;;
	esac

	if [ "$fuzz_only" = 1 ]; then
		fuzz_guest
		continue
	fi
	if [ "$soak_only" = 1 ]; then
		soak_guests
		continue
	fi
	if [ "$kernel" = debug ] && [ "$kunit" = 1 ]; then
		run debug-kunit -- kunit/run-guest.sh
		[ "$kunit_only" = 1 ] && continue
	fi
	# Every guest has soft-RoCE on its (otherwise unconnected) eth0:
	# the RDMA suites run loopback everywhere, and a sim GPU (512 MiB
	# BAR) for the gpu suite. The stock kernel runs every suite in every
	# topology. Under KASAN and TCG a guest running them all takes about
	# 15 minutes, so the debug kernel runs every suite but python (the
	# bindings reach no kernel path the C suites miss) in its first
	# topology, and in the others the suites whose paths depend on the
	# NUMA layout.
	# Without --topologies: every fixture on stock; on debug 1node and
	# 4node (several nodes, asymmetric, one without CPUs).
	ktopos=("${topologies[@]}")
	if [ ${#ktopos[@]} -eq 0 ] && [ "$kernel" = stock ]; then
		ktopos=("${all_topologies[@]}")
	elif [ ${#ktopos[@]} -eq 0 ]; then
		ktopos=(1node 4node)
	fi
	first=1
	for t in "${ktopos[@]}"; do
		if [ "$kernel" = stock ]; then
			unset DMAPLANE_SUITES
		elif [ "$first" = 1 ]; then
			export DMAPLANE_SUITES="$debug_suites_first"
		else
			export DMAPLANE_SUITES="$debug_suites_numa"
		fi
		first=0
		run "$kernel-$t" --topology "fixtures/topologies/$t.conf" \
			--rxe --gpu-mem 512 -- tests/run-guest.sh
	done
	unset DMAPLANE_SUITES
	[ "$kernel" = debug ] && [ "$fuzz" = 1 ] && fuzz_guest
	[ "$kernel" = debug ] && [ "$soak" = 1 ] && soak_guests
	if [ "$pair" = 1 ] && [ "$kernel" = stock ]; then
		# One vCPU per guest: two guests then fit the host's two cores,
		# which keeps perftest's TSC calibration sane and the link faster.
		run stock-rxe-pair --guests 2 --rxe --smp 1 --gpu-mem 64 \
			-- sim/scenarios/rxe_pair.sh
		# make hil's runner, two guests standing in for lab hosts (ssh
		# between them): hil/README.md, "Without a lab".
		run stock-hil-selftest --guests 2 --rxe \
			--topology fixtures/topologies/2node.conf \
			-- sim/scenarios/hil_selftest.sh
	fi
done

total_p=0 total_f=0 total_s=0
printf '\n%-24s %8s %8s %8s %8s %9s  %s\n' guest boot_s passed failed skipped echo_ns log
for dir in "$out"/*/guest* "$out"/stock-host/host; do
	[ -d "$dir" ] || continue
	read -r p f s < <(ktap_count "$dir"/*.ktap)
	if [ ! -f "$dir/host.ktap" ]; then
		log=-	# checks on the host itself: no guest kernel log
	elif grep -q '^ok 2 guest_kernel_log_clean' "$dir/host.ktap"; then
		log=clean
	else
		log="see $dir"
	fi
	echo_ns=$(sed -n 's/.*"ns_per_call": \([0-9.]*\).*/\1/p' \
		"$dir/echo_bench.json" 2>/dev/null)
	printf '%-24s %8s %8d %8d %8d %9s  %s\n' \
		"${dir#"$out"/}" "$(cat "$dir/boot_seconds" 2>/dev/null || echo -)" \
		"$p" "$f" "$s" "${echo_ns:--}" "$log"
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
done
if compgen -G "$out/*/guest*/kunit-*.ktap" >/dev/null; then
	printf '\n%-28s %8s %8s %8s\n' kunit_suite passed failed skipped
	for f in "$out"/*/guest*/kunit-*.ktap; do
		read -r p fl s < <(ktap_count "$f")
		name=${f##*/kunit-}
		printf '%-28s %8d %8d %8d\n' "${name%.ktap}" "$p" "$fl" "$s"
	done
fi
# Figures from the stock kernel (the debug kernel's sanitizers skew them).
for f in "$out"/stock-*node/guest0/numa_bench.txt; do
	[ -f "$f" ] || continue
	d=${f%/numa_bench.txt}
	echo
	echo "${d#"$out"/}: topology"
	sed 's/^/  /' "$d/topology.txt"
	sed 's/^/  /' "$f"
done
if [ -f "$out/stock-1node/guest0/huge_bench.txt" ]; then
	echo
	echo "stock-1node/guest0: scatterlist build + DMA map, 4 KiB pages vs 2 MiB chunks (per map):"
	sed 's/^/  /' "$out/stock-1node/guest0/huge_bench.txt"
fi
if [ -f "$out/stock-1node/guest0/gpu_bench.txt" ]; then
	echo
	echo "stock-1node/guest0: sim GPU BAR tiers (memcpy through WC and UC mappings vs host memcpy):"
	sed 's/^/  /' "$out/stock-1node/guest0/gpu_bench.txt"
fi
if [ -f "$out/stock-1node/guest0/submit_bench.txt" ]; then
	echo
	echo "stock-1node/guest0: per-operation submission, batch channel vs one ioctl:"
	sed 's/^/  /' "$out/stock-1node/guest0/submit_bench.txt"
fi
if [ -f "$out/stock-1node/guest0/rdma_bench.txt" ]; then
	echo
	echo "stock-1node/guest0:"
	sed 's/^/  /' "$out/stock-1node/guest0/rdma_bench.txt"
fi
for f in ib_write_bw ib_write_lat; do
	[ -f "$out/stock-rxe-pair/guest1/$f.json" ] || continue
	echo
	echo "$f (rxe over QEMU socket netdev, the reference on this link):"
	cat "$out/stock-rxe-pair/guest1/$f.json"
done
if [ -f "$out/stock-rxe-pair/guest1/rdma_bench_pair.txt" ]; then
	echo
	echo "stock-rxe-pair/guest1 -> guest0, the same link:"
	sed 's/^/  /' "$out/stock-rxe-pair/guest1/rdma_bench_pair.txt"
fi
if [ -f "$out/stock-rxe-pair/guest1/kv_report.json" ]; then
	echo
	echo "disaggregated inference, stock-rxe-pair: guest1 prefills, guest0 decodes:"
	sed 's/^/  /' "$out/stock-rxe-pair/guest1/kv_demo.txt"
	for c in 64K 256K 1M 4M; do
		f=$out/stock-rxe-pair/guest1/kv_7b_$c.txt
		[ -f "$f" ] || continue
		printf '  7B KV layout, %s chunks: ' "$c"
		sed -n 's/^  transfer *//p' "$f"
	done
	cat "$out/stock-rxe-pair/guest1/kv_report.json"
fi
if [ -f "$out/stock-rxe-pair/guest1/py_kv_report.json" ]; then
	echo
	echo "the same in PyTorch (python3 -m dmaplane.infer), stock-rxe-pair:"
	sed 's/^/  /' "$out/stock-rxe-pair/guest1/py_kv_demo.txt"
	printf '  7B KV layout from Python, 1M chunks: '
	sed -n 's/^  transfer *//p' "$out/stock-rxe-pair/guest1/py_kv_7b.txt"
	cat "$out/stock-rxe-pair/guest1/py_kv_report.json"
fi
for f in stream_sustained stream_sweep; do
	[ -f "$out/stock-rxe-pair/guest1/$f.txt" ] || continue
	echo
	echo "stock-rxe-pair/guest1 -> guest0, $f:"
	sed 's/^/  /' "$out/stock-rxe-pair/guest1/$f.txt"
done
if [ -f "$out/stock-rxe-pair/guest1/stream_overhead.json" ]; then
	echo
	echo "what credits and (disabled) tracepoints cost, queue depth 16, 1 MiB:"
	cat "$out/stock-rxe-pair/guest1/stream_overhead.json"
fi
for f in "$out"/debug-soak/guest*/soak.txt; do
	[ -f "$f" ] || continue
	echo
	d=${f%/soak.txt}
	echo "${d#"$out"/}:"
	sed 's/^/  /' "$f"
done
if compgen -G "$out/*/guest*/gcov" >/dev/null; then
	echo
	"$root/coverage/report.sh" "$out" || { echo "coverage report failed"; total_f=$((total_f + 1)); }
fi
echo
echo "results: $out"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
