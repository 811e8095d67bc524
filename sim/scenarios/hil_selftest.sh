#!/bin/bash
# hil's runner proven without a lab: two sim guests (vm/launch.sh --guests 2
# --rxe) stand in for two lab hosts. guest1 serves ssh (dropbear); guest0
# runs hil/run.sh on itself (single-host mode), then two-host mode with
# guest1 (an inventory, --sync), and checks what hil reported against what
# the guests are: rxe0 on Ethernet, no GPU, the NUMA topology as booted,
# the chosen suites run (and no other) or skipped for the hardware they
# lack, the closing line, and the KV-cache demo's tokens identical across
# the two "hosts".
# The keys are made at run time in /run (tmpfs); guest0's public key and
# its "done" reach guest1 over the guest link.
# Writes guest0's verdicts as $DMAPLANE_RESULTS/selftest_*.ktap; hil's
# bundles stay in hil-single/ and hil-pair/ with their logs beside them.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
results=${DMAPLANE_RESULTS:?}
peer=${DP_PEER_IPS%% *}
keys=/run/hil-selftest
key_port=2222
done_port=2223
mkdir -p "$keys" /root/.ssh && chmod 700 /root/.ssh || exit 1

if [ "$DP_GUEST_INDEX" = 1 ]; then
	dropbearkey -t ed25519 -f "$keys/host_key" >/dev/null || exit 1
	timeout 600 busybox nc -l -p "$key_port" >/root/.ssh/authorized_keys || exit 1
	chmod 600 /root/.ssh/authorized_keys
	dropbear -F -E -s -r "$keys/host_key" -p "$DP_GUEST_IP:22" \
		2>"$results/dropbear.log" &
	# Serve until guest0 is done (the launcher's timeout bounds it).
	busybox nc -l -p "$done_port" >/dev/null
	kill $!
	exit 0
fi

. "$root/tests/ktap.sh"
. "$root/tests/ktap-count.sh"
status=0
check() { # name condition-status [diagnostic, may span lines]
	local ok=ok diag=${3:-}
	[ "$2" = 0 ] || ok="not ok" status=1
	ktap_single "$results/selftest_$1.ktap" hil_selftest "$ok" "$1" "${diag//$'\n'/$'\n# '}"
}
# jq -e on a hil JSON file: "true" for a filter that holds.
holds() { jq -e "$2" "$1" >/dev/null 2>&1; }
# The closing line is the log's last, and agrees with the bundle's KTAP.
closing() { # log dir
	local last files
	last=$(tail -n 1 "$1")
	mapfile -t files < <(find "$2" -name '*.ktap')
	[[ $last =~ ^[0-9]+\ passed,\ [0-9]+\ failed,\ [0-9]+\ skipped$ ]] &&
		[ "$last" = "$(ktap_count "${files[@]}" |
			awk '{ printf "%d passed, %d failed, %d skipped", $1, $2, $3 }')" ]
}

# Whatever happens here, guest1 stops serving.
trap 'for _ in 1 2 3; do echo finished >"/dev/tcp/$peer/$done_port" && break; sleep 1; done 2>/dev/null' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$keys/id" || exit 1
for _ in $(seq 300); do
	cat "$keys/id.pub" 2>/dev/null >"/dev/tcp/$peer/$key_port" && break
	sleep 1
done
cat >/root/.ssh/config <<EOF
Host dp-guest1
	HostName $peer
	User root
	IdentityFile $keys/id
	UserKnownHostsFile $keys/known_hosts
	StrictHostKeyChecking accept-new
EOF
reached=1
for _ in $(seq 120); do
	ssh -o BatchMode=yes -o ConnectTimeout=5 dp-guest1 true 2>"$results/ssh.err" &&
		reached=0 && break
	sleep 1
done
check ssh_to_guest1 "$reached" "$(cat "$results/ssh.err")"

# Single-host mode, as make hil runs it, with a few suites: the stock
# guests run all of them through the same tests/run-guest.sh.
single=$results/hil-single
chosen="core numa gpu privilege verbs"
"$root/hil/run.sh" --out "$single" --suites "$chosen" \
	>"$results/hil-single.log" 2>&1
check single_host_nothing_failed $? "see hil-single.log"
p=$single/probe.json
holds "$p" .
check probe_json_valid $?
holds "$p" ".kernel == \"$(uname -r)\" and .kernel_headers and .cpus == $(nproc)"
check probe_kernel_cpus $?
holds "$p" '[.rdma[] | select(.name == "rxe0" and .driver == "rxe") | .ports[0] |
	select(.link_layer == "Ethernet" and .state == "ACTIVE" and .netdev == "eth0" and
	.ipv4 == "'"$DP_GUEST_IP"'")] | length == 1'
check probe_rxe_ethernet $?
holds "$p" '.gpu.present == false and .gpu.providers == []'
check probe_no_gpu $?
# The NUMA nodes and SLIT rows as the guest was booted (topology.conf).
nodes=$(sed -n 's/^nodes=//p' "$DP_TOPOLOGY")
slit=$(sed -n 's/^node[0-9]*_distances=//p' "$DP_TOPOLOGY" | tr '\n' ' ')
holds "$p" ".numa.nodes == $nodes and ([.numa.node[].distances[]] | map(tostring) | join(\" \")) == \"${slit% }\""
check probe_numa_nodes $? "expected $nodes nodes, distances $slit"
holds "$p" '.dmaplane.loaded and (.dmaplane.rdma.rdma_devices | map(.name) | index("rxe0")) != null'
check probe_dmaplane_sees_rxe0 $?
# The chosen suites ran (a KTAP plan), except gpu: skipped, saying why;
# no other suite did.
missing= extra=
for s in $("$root/tests/run-guest.sh" --list); do
	if [[ " $chosen " != *" $s "* ]]; then
		[ ! -e "$single/$s.ktap" ] || extra+=" $s"
	elif [ "$s" != gpu ]; then
		grep -q '^1\.\.[1-9]' "$single/$s.ktap" 2>/dev/null || missing+=" $s"
	fi
done
check suites_ran "$([ -z "$missing$extra" ]; echo $?)" \
	"no KTAP plan from:$missing; not chosen but ran:$extra"
grep -q '^ok 1 gpu # SKIP no GPU: no NVIDIA GPU.*no dmaplane sim GPU' "$single/gpu.ktap" 2>/dev/null
check gpu_suite_skipped_no_gpu $? "$(cat "$single/gpu.ktap" 2>/dev/null)"
missing=
for f in probe.json probe.txt probe.env dmesg.txt summary.txt echo_bench.json; do
	[ -s "$single/$f" ] || missing+=" $f"
done
check single_bundle_complete "$([ -z "$missing" ]; echo $?)" "missing:$missing"
closing "$results/hil-single.log" "$single"
check single_closing_line $? "$(tail -n 1 "$results/hil-single.log")"

# Two-host mode: guest0 decodes here, guest1 prefills over ssh.
pair=$results/hil-pair
printf '%s\n' "# name ssh_target nic gpu role" "g0 local rxe0 none decode" \
	"g1 dp-guest1 rxe0 none prefill" >"$keys/inventory"
"$root/hil/run.sh" --inventory "$keys/inventory" --sync --out "$pair" \
	>"$results/hil-pair.log" 2>&1
check pair_nothing_failed $? "see hil-pair.log"
holds "$pair/g1/probe.json" '.host == "dp-guest1"'
check pair_remote_probed_over_ssh $?
grep -q '^ok 1 inventory_g0' "$pair/hil_inventory_g0.ktap" 2>/dev/null &&
	grep -q '^ok 1 inventory_g1' "$pair/hil_inventory_g1.ktap" 2>/dev/null
check pair_inventory_matches $?
grep -q 'verdict: bit-identical' "$pair/g1/kv_demo.txt" 2>/dev/null &&
	holds "$pair/g1/kv_report.json" '.bit_identical'
check pair_kv_tokens_identical $? "$(grep verdict "$pair/g1/kv_demo.txt" 2>/dev/null)"
read -r vp vf _ < <(ktap_count "$pair/g0/verbs_pair.ktap" "$pair/g1/verbs_pair.ktap")
check pair_verbs_pair_both_sides "$([ "$vp" -gt 0 ] && [ "$vf" = 0 ]; echo $?)" "$vp passed, $vf failed"
closing "$results/hil-pair.log" "$pair"
check pair_closing_line $? "$(tail -n 1 "$results/hil-pair.log")"
exit "$status"
