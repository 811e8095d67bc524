#!/bin/bash
# The soak: two guests on a soft-RoCE link carry, at the same time and for
# $DP_SOAK_SECONDS (default 300),
#   stream  guest1 streams checksummed 1 MiB messages to guest0 at queue
#           depth 16 through credits (dmaplanectl stream): every message
#           checked on arrival;
#   kv      guest1 prefills the tiny model and ships its KV cache, guest0
#           decodes, connection after connection (4 requests each, prompt
#           lengths varying): every request bit-identical to guest1's
#           single-process run;
#   fuzz    dpfuzz --shared on both guests (its own connections over
#           rxe loopback, 2 threads), the hung-task detector at 60 s.
# Then every module counter of live objects must be back at zero, the
# module must unload and load again, and kmemleak must be clean. Each
# guest writes soak.ktap and soak.txt, the report: the load held (stream
# MB/s per second: min, median, max; KV requests), errors (completion
# errors, stalls, peer and op errors, fuzz findings) and integrity.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
results=${DMAPLANE_RESULTS:?}
build=${DMAPLANE_BUILD:-$root/build}
seconds=${DP_SOAK_SECONDS:-300}
seed=${DP_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ctl=$build/tools/dmaplanectl
dpinfer=$build/apps/dpinfer
tiny=$root/fixtures/models/tiny.conf
stream_port=18519
kv_port=18520
bye_port=18522
# The decode side's longest wait for guest1's goodbye, past the end.
grace=300
peer=${DP_PEER_IPS%% *}
ktap=$results/soak.ktap
report=$results/soak.txt
. "$root/tests/ktap.sh"
. "$root/sim/scenarios/guest-checks.sh"
ktap_begin soak 5

hung_task_detector 60 >>"$ktap"
if ! module_load; then
	ktap_single "$ktap" soak "not ok" setup "cannot load $ko"
	exit 1
fi
counter() { awk -v k="$1:" '$1 == k { print $2 }' "$info"; }
peer_errors0=$(counter peer_errors) op_errors0=$(counter op_errors)

"$build/tests/dpfuzz" --shared --seed "$seed" --duration "$seconds" \
	--threads 2 --hang-secs 60 --patterns "$root/tests/kernel-log-bad.re" \
	>"$results/dpfuzz.txt" 2>&1 &
fuzz=$!

kv_ok=0 kv_bad=0
if [ "$DP_GUEST_INDEX" = 0 ]; then
	role=receiver
	"$ctl" stream --serve --addr "$DP_GUEST_IP" --port "$stream_port" \
		--size 1M --connections 1 --json-out "$results/stream.json" \
		>"$results/stream.txt" 2>&1 &
	stream=$!
	# One decode per connection until guest1's goodbye (a dmaplane
	# connection on $bye_port after its last prefill); the decode still
	# waiting then for a connection is stopped (nothing counted).
	(
		until=$(($(date +%s) + seconds + grace))
		until "$ctl" rdma-listen --addr "$DP_GUEST_IP" \
			--port "$bye_port" --time-ms 60000 >/dev/null 2>&1; do
			[ "$(date +%s)" -lt "$until" ] || exit 1
		done
	) &
	bye=$!
	out=$results/kv_decode.last
	while kill -0 "$bye" 2>/dev/null; do
		"$dpinfer" decode --addr "$DP_GUEST_IP" --port "$kv_port" \
			--model "$tiny" --region 1M --requests 4 >"$out" 2>&1 &
		decode=$!
		wait -n "$decode" "$bye"
		if kill -0 "$decode" 2>/dev/null; then
			kill "$decode"
			wait "$decode"
			grep -q '^request ' "$out" || break
			rc=1
		else
			wait "$decode"
			rc=$?
		fi
		if [ "$rc" = 0 ]; then
			kv_ok=$((kv_ok + 1))
		else
			kv_bad=$((kv_bad + 1))
			cat "$out" >>"$results/kv_failed.txt"
		fi
	done
	wait "$bye"
	rm -f "$out"
	kv_what="decode connections"
else
	role=sender
	"$ctl" stream --addr "$peer" --port "$stream_port" \
		--duration "$seconds" --size 1M --qd 16 \
		--json-out "$results/stream.json" >"$results/stream.txt" 2>&1 &
	stream=$!
	i=0
	while [ "$SECONDS" -lt "$seconds" ]; do
		i=$((i + 1))
		out=$results/kv_prefill.last
		"$dpinfer" prefill --addr "$peer" --port "$kv_port" \
			--model "$tiny" --prompt-len $((2 + i * 7 % 120)) \
			--generate 8 --requests 4 >"$out" 2>&1
		if [ $? = 0 ] && grep -q '^verdict: bit-identical' "$out" &&
			[ "$(grep -c '^  bit-identical  yes' "$out")" = 4 ]; then
			kv_ok=$((kv_ok + 1))
		else
			kv_bad=$((kv_bad + 1))
			cat "$out" >>"$results/kv_failed.txt"
		fi
	done
	rm -f "$results/kv_prefill.last"
	"$ctl" rdma-connect --addr "$peer" --port "$bye_port" --time-ms 60000 \
		>/dev/null 2>&1
	kv_what="prefill connections (4 requests each, bit-identical)"
fi

wait "$stream"
stream_rc=$?
wait "$fuzz"
fuzz_rc=$?

# The load held: the stream's MB/s second by second (its table's rows).
mbps=$(awk '/^second/ { t = 1; next } t && $1 ~ /^[0-9]+$/ { print $2; next }
	{ t = 0 }' "$results/stream.txt" | sort -n)
rows=$(echo "$mbps" | grep -c .)
smin=$(echo "$mbps" | head -n 1)
smed=$(echo "$mbps" | sed -n "$(((rows + 1) / 2))p")
smax=$(echo "$mbps" | tail -n 1)
{
	echo "soak, $role, $seconds s (dpfuzz seed $seed)"
	if [ "$role" = sender ]; then
		echo "stream MB/s per second ($rows s): min $smin, median $smed, max $smax"
	fi
	grep -E '^(throughput|stalls|completion errors|receiver|integrity|received)' \
		"$results/stream.txt"
	echo "kv: $kv_ok $kv_what ok, $kv_bad failed"
	echo "dpfuzz: exit $fuzz_rc, $(dpfuzz_calls) calls"
	echo "peer_errors +$(($(counter peer_errors) - peer_errors0)), op_errors +$(($(counter op_errors) - op_errors0)) (dpfuzz's own failed operations among them)"
} >"$report"

if [ "$stream_rc" = 0 ] && grep -q '^integrity: ok' "$results/stream.txt"; then
	result ok soak_stream "$(grep -m1 '^throughput' "$results/stream.txt")"
else
	result "not ok" soak_stream "exit $stream_rc: see stream.txt"
fi
if [ "$kv_ok" -gt 0 ] && [ "$kv_bad" = 0 ]; then
	result ok soak_kv "$kv_ok $kv_what"
else
	result "not ok" soak_kv "$kv_ok ok, $kv_bad failed: see kv_failed.txt"
fi
if [ "$fuzz_rc" = 0 ]; then
	result ok soak_fuzz "seed $seed"
else
	dpfuzz_findings
	result "not ok" soak_fuzz "seed $seed, exit $fuzz_rc: see dpfuzz.txt"
fi
counters_zero soak_counters_zero
kmemleak_clean soak_kmemleak_clean
cat "$report" "$ktap"
exit "$failed"
