#!/bin/bash
# make bench: figures, never verdicts. Boots stock-kernel guests and prints
# (tables) and saves (JSON, build/bench/) what dmaplane's benchmarks
# measure on this machine:
#   - the NUMA bandwidth matrix (read and copy) on every topology fixture;
#   - building and DMA-mapping a scatterlist, 4 KiB pages against 2 MiB
#     chunks, 16 MiB to 1 GiB, in a 1-node guest big enough for 1 GiB;
#   - per-operation submission through POST/REAP against one ioctl, and
#     loopback RDMA WRITE over soft-RoCE: throughput 4 KiB-4 MiB at queue
#     depths 1-64, latency p50/p99/p99.9 (the two-guest figures, against
#     perftest on the same link, come from make sim's rxe pair).
# Exit status 1 only when a benchmark could not run.
#
#   sim/bench.sh [--numa-size S] [--huge-sizes S,S,...] [--out DIR]
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build/bench
numa_size=64M
huge_sizes=16M,64M,256M,1G

while [ $# -gt 0 ]; do
	case $1 in
	--numa-size) numa_size=$2; shift ;;
	--huge-sizes) huge_sizes=$2; shift ;;
	--out) out=$2; shift ;;
	*) echo "sim/bench.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
rm -rf "$out"
mkdir -p "$out"
cd "$root" || exit 2

launch=(vm/launch.sh --timeout 900)
[ -n "${KVER:-}" ] && launch+=(--kver "$KVER")
# In the guest: load the module, run one dmaplanectl benchmark into
# $DMAPLANE_RESULTS: its table and its JSON from the same run.
guest_cmd() { # name dmaplanectl-args...
	local name=$1
	shift
	printf 'modprobe -a ib_core rdma_cm && insmod build/modules/$(uname -r)/src/module/dmaplane.ko max_buffer_size=%s && ' \
		$((1 << 30))
	printf 'build/tools/dmaplanectl topo >$DMAPLANE_RESULTS/topology.txt && '
	printf 'build/tools/dmaplanectl %s --json-out $DMAPLANE_RESULTS/%s.json >$DMAPLANE_RESULTS/%s.txt' \
		"$*" "$name" "$name"
}

status=0
show() { # run-dir name title
	local f=$out/$1/guest0/$2
	echo
	echo "$3"
	if [ -f "$f.txt" ]; then
		sed 's/^/  /' "$f.txt"
		cp "$f.json" "$out/$1-$2.json"
	else
		echo "  did not run; see $out/$1/guest0/output.log"
		status=1
	fi
}

for conf in fixtures/topologies/*.conf; do
	t=$(basename "$conf" .conf)
	for op in read copy; do
		"${launch[@]}" --topology "$conf" --results "$out/$t-$op" -- \
			"$(guest_cmd numa_bench numa-bench --size "$numa_size" --op "$op" --passes 5)" \
			>/dev/null 2>&1
		show "$t-$op" numa_bench "$t: NUMA bandwidth, $op, $numa_size"
	done
done

# 1 GiB of 4 KiB pages and 1 GiB of 2 MiB chunks, one after the other.
"${launch[@]}" --mem 3072 --results "$out/huge" -- \
	"$(guest_cmd huge_bench huge-bench --sizes "$huge_sizes" --iterations 5)" \
	>/dev/null 2>&1
show huge huge_bench "scatterlist build + DMA map per buffer, 4 KiB pages vs 2 MiB chunks (1-node guest, 3 GiB)"

"${launch[@]}" --rxe --results "$out/submit" -- \
	"$(guest_cmd submit_bench submit-bench --iterations 256000)" >/dev/null 2>&1
show submit submit_bench "per-operation submission cost (1-node guest)"

"${launch[@]}" --rxe --results "$out/rdma" -- \
	"$(guest_cmd rdma_bench rdma-bench --addr \$DP_GUEST_IP --sizes 4K,64K,1M,4M --depths 1,8,64 --time-ms 2000 --iterations 1000)" \
	>/dev/null 2>&1
show rdma rdma_bench "loopback RDMA WRITE over soft-RoCE (1-node guest)"

echo
echo "JSON: $out/*.json"
exit "$status"
