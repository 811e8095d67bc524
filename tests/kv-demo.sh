# shellcheck shell=bash
# The disaggregated-inference demo's two sides, sourced by the pair runners
# (sim/scenarios/rxe_pair.sh, hil/host.sh): kv_serve on the decode host,
# kv_run on the prefill host, in lockstep (one connection per run). The tiny
# model twice on one connection, once without overlap, then the KV layout
# of a 7B model at four chunk sizes; kv_run ends with kv_report.json.
#
# The caller provides: $root, $results, $status (set to 1 on a failure),
# ktap OK|"not ok" NAME [DIAGNOSTIC], DP_GUEST_IP (this host's RDMA address),
# $peer (the other host's), and optionally $avg (ib_write_bw MB/s, the
# reference the 7B transfer is compared against).
kv_port=18520
dpinfer=${DMAPLANE_BUILD:-$root/build}/apps/dpinfer
models=$root/fixtures/models
# The demo's knobs (make sim and hil/run.sh pass them from the environment).
kv_model=$models/${DP_KV_MODEL:-tiny}.conf
kv_prompt=${DP_KV_PROMPT:-"The KV cache moves between hosts; the tokens must not change."}
kv_chunk=${DP_KV_CHUNK:-64K}
kv_window=()
[ -n "${DP_KV_WINDOW:-}" ] && kv_window=(--window "$DP_KV_WINDOW")
kv_chunks="64K 256K 1M 4M"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b }'; }

# The decode host: the decode side of every kv run, one connection each.
kv_decode() { # name args...
	local name=$1
	shift
	if "$dpinfer" decode --addr "$DP_GUEST_IP" --port "$kv_port" "$@" \
		>"$results/$name.txt" 2>&1; then
		ktap ok "$name"
	else
		ktap "not ok" "$name" "see $name.txt"
		status=1
	fi
}

kv_serve() {
	local c
	kv_decode kv_decode_demo --model "$kv_model" --region 64M --requests 2 \
		"${kv_window[@]}"
	kv_decode kv_decode_nooverlap --model "$kv_model" --region 64M \
		"${kv_window[@]}"
	for c in $kv_chunks; do
		kv_decode "kv_decode_7b_$c" --model "$models/llama7b-kv.conf" \
			--region 80M
	done
}

# The prefill host: one prefill run; its JSON in $results/NAME.json.
kv_prefill() { # name args...
	local name=$1
	shift
	if "$dpinfer" prefill --addr "$peer" --port "$kv_port" "$@" \
		--json-out "$results/$name.json" >"$results/$name.txt" 2>&1; then
		ktap ok "$name"
	else
		ktap "not ok" "$name" "see $name.txt"
		status=1
	fi
}

# The value of "key": in request @3 of JSON file @1 (first: 1).
kv_field() { # file key [request]
	sed 's/}, {/}\n{/g' "$1" 2>/dev/null | sed -n "${3:-1}p" |
		sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" | tr -d '"'
}

kv_run() {
	local c best=0 best_c= mbps sweep= sep=
	kv_prefill kv_demo --model "$kv_model" --prompt "$kv_prompt" \
		--generate 32 --chunk "$kv_chunk" --requests 2
	kv_prefill kv_nooverlap --model "$kv_model" --prompt "$kv_prompt" \
		--generate 32 --chunk "$kv_chunk" --no-overlap
	for c in $kv_chunks; do
		kv_prefill "kv_7b_$c" --model "$models/llama7b-kv.conf" \
			--synthetic --prompt-len 129 --kv fp16 --chunk "$c"
		mbps=$(kv_field "$results/kv_7b_$c.json" MBps)
		sweep+="$sep\"$c\": ${mbps:-null}"
		sep=", "
		if [ -n "$mbps" ] && awk -v a="$mbps" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$mbps best_c=$c
		fi
	done
	local d=$results/kv_demo.json n=$results/kv_nooverlap.json
	local exposed transfer hidden
	exposed=$(kv_field "$d" exposed_transfer_ms)
	transfer=$(kv_field "$n" transfer_ms)
	hidden=$(awk -v e="$exposed" -v t="$transfer" 'BEGIN { if (t > 0) printf "%.3f", 1 - e / t }')
	printf '{"model": "%s", "prompt_tokens": %s, "kv_bytes": %s, "chunks": %s, "transfer_MBps_without_overlap": %s, "prefill_ms": %s, "exposed_transfer_ms": %s, "transfer_without_overlap_ms": %s, "hidden": %s, "first_decode_ms": %s, "ttft_ms": %s, "decode_tokens_per_s": %s, "stalls": %s, "setup_ms": %s, "second_request_ttft_ms": %s, "bit_identical": %s, "kv7b_MBps_by_chunk": {%s}, "kv7b_best_MBps": %s, "kv7b_best_chunk": "%s", "ib_write_bw_MBps": %s, "kv7b_vs_ib_write_bw": %s}\n' \
		"$(kv_field "$d" model)" \
		"$(kv_field "$d" prompt_tokens)" "$(kv_field "$d" kv_bytes)" \
		"$(kv_field "$d" chunks)" "$(kv_field "$n" MBps)" \
		"$(kv_field "$d" prefill_ms)" "${exposed:-null}" "${transfer:-null}" \
		"${hidden:-null}" "$(kv_field "$d" first_decode_ms)" \
		"$(kv_field "$d" ttft_ms)" "$(kv_field "$d" decode_tokens_per_s)" \
		"$(kv_field "$d" stalls)" "$(kv_field "$d" setup_ms)" \
		"$(kv_field "$d" ttft_ms 2)" \
		"$(grep -q 'verdict: bit-identical' "$results/kv_demo.txt" && echo true || echo false)" \
		"$sweep" "$best" "$best_c" "${avg:-null}" "$(ratio "$best" "${avg:-0}")" |
		sed 's/: ,/: null,/g; s/: }/: null}/' | tee "$results/kv_report.json"
}

# The same demo in PyTorch (python3 -m dmaplane.infer: dmaplane.model, the
# C model's weights and arithmetic, over dpinfer's protocol): PyTorch on
# both sides, a C prefill into a PyTorch decode, a PyTorch prefill into a C
# decode (the wire format is the contract, not the language), and the 7B
# layout sent from Python; py_kv_serve on the decode host, py_kv_run on the
# prefill host, in lockstep; each pairing on a port of its own, so a side
# that fails before it listens or dials cannot pair the next runs wrongly.
# py_kv_run ends with py_kv_report.json.
py_kv_port=18522	# .. +3
py_infer=(env PYTHONPATH="$root/python" PYTHONDONTWRITEBYTECODE=1
	/usr/bin/python3 -m dmaplane.infer)

# One run of either side: name engine(py|c) command args...
py_kv_side() {
	local name=$1 engine=$2 cmd=("${py_infer[@]}")
	shift 2
	[ "$engine" = c ] && cmd=("$dpinfer")
	if "${cmd[@]}" "$@" >"$results/$name.txt" 2>&1; then
		ktap ok "$name"
	else
		ktap "not ok" "$name" "see $name.txt"
		status=1
	fi
}

py_kv_serve() {
	local args=(decode --addr "$DP_GUEST_IP" "${kv_window[@]}" --port)
	py_kv_side py_kv_decode_demo py "${args[@]}" "$py_kv_port" \
		--model "$kv_model" --region 64M --requests 2
	py_kv_side py_kv_decode_from_c py "${args[@]}" $((py_kv_port + 1)) \
		--model "$kv_model" --region 64M
	py_kv_side kv_decode_from_py c "${args[@]}" $((py_kv_port + 2)) \
		--model "$kv_model" --region 64M
	py_kv_side py_kv_decode_7b py "${args[@]}" $((py_kv_port + 3)) \
		--model "$models/llama7b-kv.conf" --region 80M
}

# The generated tokens a local run's JSON lists.
kv_tokens() { sed -n 's/.*"tokens": \[\([^]]*\)\].*/\1/p' "$1"; }

py_kv_run() {
	local args=(prefill --addr "$peer" --port)
	local demo=(--model "$kv_model" --prompt "$kv_prompt" --generate 32)
	local d=$results/py_kv_demo.json c=$results/py_kv_to_c.json
	local b=$results/py_kv_7b.json same
	# A single-process PyTorch run gives dpinfer local's tokens.
	"$dpinfer" local "${demo[@]}" --json-out "$results/kv_local.json" \
		>"$results/kv_local.txt" 2>&1
	py_kv_side py_kv_local py local "${demo[@]}" \
		--json-out "$results/py_kv_local.json"
	same=false
	[ -n "$(kv_tokens "$results/kv_local.json")" ] &&
		[ "$(kv_tokens "$results/kv_local.json")" = \
			"$(kv_tokens "$results/py_kv_local.json")" ] && same=true
	if [ "$same" = true ]; then
		ktap ok py_kv_local_tokens_match_c
	else
		ktap "not ok" py_kv_local_tokens_match_c "see kv_local.txt, py_kv_local.txt"
		status=1
	fi
	py_kv_side py_kv_demo py "${args[@]}" "$py_kv_port" "${demo[@]}" \
		--chunk "$kv_chunk" --requests 2 --json-out "$d"
	py_kv_side py_kv_c_to_py c "${args[@]}" $((py_kv_port + 1)) "${demo[@]}" \
		--chunk "$kv_chunk" --json-out "$results/py_kv_c_to_py.json"
	py_kv_side py_kv_to_c py "${args[@]}" $((py_kv_port + 2)) "${demo[@]}" \
		--chunk "$kv_chunk" --no-overlap --json-out "$c"
	py_kv_side py_kv_7b py "${args[@]}" $((py_kv_port + 3)) \
		--model "$models/llama7b-kv.conf" --synthetic --prompt-len 129 \
		--kv fp16 --chunk 1M --json-out "$b" ${avg:+--ref-bw "$avg"}
	printf '{"engine": "pytorch", "model": "%s", "prompt_tokens": %s, "kv_bytes": %s, "chunks": %s, "prefill_ms": %s, "exposed_transfer_ms": %s, "first_decode_ms": %s, "ttft_ms": %s, "second_request_ttft_ms": %s, "decode_tokens_per_s": %s, "transfer_MBps_without_overlap": %s, "bit_identical": %s, "c_prefill_pytorch_decode_bit_identical": %s, "pytorch_prefill_c_decode_bit_identical": %s, "tokens_match_c_local": %s, "kv7b_MBps": %s, "ib_write_bw_MBps": %s, "kv7b_vs_ib_write_bw": %s}\n' \
		"$(kv_field "$d" model)" "$(kv_field "$d" prompt_tokens)" \
		"$(kv_field "$d" kv_bytes)" "$(kv_field "$d" chunks)" \
		"$(kv_field "$d" prefill_ms)" "$(kv_field "$d" exposed_transfer_ms)" \
		"$(kv_field "$d" first_decode_ms)" "$(kv_field "$d" ttft_ms)" \
		"$(kv_field "$d" ttft_ms 2)" "$(kv_field "$d" decode_tokens_per_s)" \
		"$(kv_field "$c" MBps)" \
		"$(grep -q 'verdict: bit-identical' "$results/py_kv_demo.txt" && echo true || echo false)" \
		"$(grep -q 'verdict: bit-identical' "$results/py_kv_c_to_py.txt" && echo true || echo false)" \
		"$(grep -q 'verdict: bit-identical' "$results/py_kv_to_c.txt" && echo true || echo false)" \
		"$same" "$(kv_field "$b" MBps)" "${avg:-null}" \
		"$(ratio "$(kv_field "$b" MBps)" "${avg:-0}")" |
		sed 's/: ,/: null,/g; s/: }/: null}/' | tee "$results/py_kv_report.json"
}
