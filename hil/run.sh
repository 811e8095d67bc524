#!/bin/bash
# make hil: dmaplane's suites on real hardware. See hil/README.md.
#
#   hil/run.sh [--out DIR] [--nic DEV] [--suites "A B"] this host (as root)
#   hil/run.sh --hosts A,B [--inventory FILE] [--sync] [--out DIR]
#   hil/run.sh --inventory FILE [--sync] [--out DIR]   A, B by role
#
# This host: hil/host.sh prepares it (builds what is stale, loads
# dmaplane.ko, probes the hardware), tests/run-guest.sh runs the suites whose
# hardware the probe found, and every other suite gets a KTAP file saying
# "# SKIP" and what is missing. --nic picks the RDMA device (default: the
# first with an ACTIVE port and an IPv4 address); --suites runs only those
# suites (tests/run-guest.sh --list names them), the others get no file.
#
# Two hosts: A decodes and serves, B prefills and connects; both are
# prepared, then run the two-host suites (verbs_pair, the KV-cache demo)
# against each other. A host is an ssh target (BatchMode: the user's ssh
# config and keys, nothing in the repository) or "local" for this machine;
# an inventory names its ssh target, RDMA device, expected GPU and role.
# The repository must be at this same path on both hosts (--sync copies it
# there first, without build/ and results) and the login must be root.
#
# Results go to DIR (default hil/results/<host>-<date>, per host a
# subdirectory in two-host mode): the probe, every KTAP file, benchmark
# JSON, dmesg.txt and summary.txt. The last line is "N passed, N failed,
# N skipped"; the exit status is 0 only when nothing failed.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
build=${DMAPLANE_BUILD:-$root/build}
. "$root/tests/ktap.sh"
. "$root/tests/ktap-count.sh"

out= nic= hosts= inventory= sync=0 only=
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift ;;
	--nic) nic=$2; shift ;;
	--hosts) hosts=$2; shift ;;
	--inventory) inventory=$2; shift ;;
	--sync) sync=1 ;;
	--suites) only=$2; shift ;;
	*) echo "hil/run.sh: unknown option $1 (see the file's header)" >&2; exit 2 ;;
	esac
	shift
done
known=" $("$root/tests/run-guest.sh" --list) "
for s in $only; do
	[[ $known == *" $s "* ]] ||
		{ echo "hil/run.sh: no suite $s (tests/run-guest.sh --list)" >&2; exit 2; }
done
stamp=$(date +%Y%m%d-%H%M%S)

# The hardware a suite needs beyond the module: an RDMA port rdma_cm can
# use (ACTIVE, with an IPv4 address), or a GPU provider.
suite_needs() {
	case $1 in
	rdma | verbs | flow | kvxfer) echo rdma ;;
	gpu) echo gpu ;;
	esac
}

# From a host's probe.env: "DEVICE ADDRESS" of NIC (empty: the first usable
# one); otherwise why there is none, and a failure.
rdma_pick() { # probe.env nic
	(
		# shellcheck source=/dev/null  # written by hil/probe.sh
		. "$1" || exit 1
		seen=
		for e in "${PROBE_RDMA[@]}"; do
			read -r dev port _ state _ _ ip4 <<<"$e"
			[ -z "$2" ] || [ "$dev" = "$2" ] || continue
			if [ "$state" = ACTIVE ] && [ "$ip4" != - ]; then
				echo "$dev $ip4"
				exit 0
			fi
			seen+="${seen:+, }$dev port $port $state$([ "$ip4" != - ] || echo ", no IPv4")"
		done
		if [ -n "$seen" ]; then
			echo "no ACTIVE RDMA port with an IPv4 address ($seen)"
		elif [ -n "$2" ]; then
			echo "no RDMA device $2"
		else
			echo "no RDMA device (/sys/class/infiniband is empty)"
		fi
		exit 1
	)
}

gpu_missing() { # probe.env: empty when a GPU provider was found
	# shellcheck source=/dev/null
	(. "$1" && [ -z "$PROBE_GPU" ] && echo "no GPU: $PROBE_NO_GPU")
}

# Run a command in the repository on TARGET: here, or over ssh.
on() { # target command...
	local target=$1
	shift
	if [ "$target" = local ]; then
		(cd "$root" && "$@")
	else
		ssh -o BatchMode=yes "$target" "cd $(printf %q "$root") && $(printf '%q ' "$@")"
	fi
}

# $out (--out, or the default given): new or empty, since every KTAP file
# in it is counted; made absolute, since remote hosts use the same path.
results_dir() { # default
	out=${out:-$1}
	if [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
		echo "hil/run.sh: $out is not empty" >&2
		exit 2
	fi
	mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 2
}

# One table row per KTAP file under $out, the closing line, summary.txt;
# the status says whether nothing failed.
summarize() { # title
	local f files p fl s note total
	mapfile -t files < <(find "$out" -name '*.ktap' | sort)
	read -r -a total < <(ktap_count /dev/null "${files[@]}")
	{
		echo "dmaplane hil: $1"
		printf '\n%-34s %7s %7s %8s  %s\n' ktap passed failed skipped note
		for f in "${files[@]}"; do
			read -r p fl s < <(ktap_count "$f")
			note=$(sed -n 's/^not ok [0-9]* //p' "$f" | tr '\n' ' ')
			[ -n "$note" ] && note="failed: $note"
			[ "$p$fl" = 00 ] && note=$(sed -n 's/^ok [0-9]* .*# SKIP //p' "$f" | head -n 1)
			f=${f#"$out"/}
			printf '%-34s %7d %7d %8d  %s\n' "${f%.ktap}" "$p" "$fl" "$s" "$note"
		done
		printf '\nresults: %s\n%d passed, %d failed, %d skipped\n' "$out" "${total[@]}"
	} | tee "$out/summary.txt"
	[ "${total[1]}" -eq 0 ]
}

single_host() {
	local pick dev addr= rdma_why gpu_why suites=() s why rc=1
	[ "$(id -u)" = 0 ] || { echo "hil/run.sh: run as root (it loads dmaplane.ko)" >&2; exit 2; }
	results_dir "$root/hil/results/$(hostname -s)-$stamp"
	echo "hil: preparing $(hostname -s) (log: $out/prepare.log)"
	"$root/hil/host.sh" prepare "$out" >"$out/prepare.log" 2>&1
	local prepared=$?
	sed 's/^/  /' "$out/probe.txt"
	if pick=$(rdma_pick "$out/probe.env" "$nic"); then
		read -r dev addr <<<"$pick"
		rdma_why=
		echo "hil: RDMA suites on $dev, $addr"
	else
		rdma_why=$pick
	fi
	gpu_why=$(gpu_missing "$out/probe.env")
	if [ "$prepared" = 0 ]; then
		for s in $("$root/tests/run-guest.sh" --list); do
			[ -z "$only" ] || [[ " $only " == *" $s "* ]] || continue
			case $(suite_needs "$s") in
			rdma) why=$rdma_why ;;
			gpu) why=$gpu_why ;;
			*) why= ;;
			esac
			if [ -n "$why" ]; then
				ktap_single "$out/$s.ktap" "$s" ok "$s # SKIP $why" >/dev/null
			else
				suites+=("$s")
			fi
		done
		echo "hil: suites ${suites[*]} (log: $out/suites.log)"
		# The suites find this host's RDMA address where sim guests have it.
		if [ -n "$addr" ]; then export DP_GUEST_IP=$addr; else unset DP_GUEST_IP; fi
		DMAPLANE_SUITES="${suites[*]}" DMAPLANE_RESULTS=$out \
			DMAPLANE_BUILD=$build "$root/tests/run-guest.sh" >"$out/suites.log" 2>&1
		rc=$?
	else
		echo "hil: preparing failed, no suites run"
	fi
	"$root/hil/host.sh" finish "$out" "$rc"
	echo
	summarize "$(hostname -s), kernel $(uname -r), $(date -u '+%F %T UTC')"
}

# Inventory lines: name ssh_target nic gpu role ("#" comments).
inv_field() { # key-column key field-column
	[ -n "$inventory" ] || return 0
	awk -v kc="$1" -v k="$2" -v fc="$3" \
		'!/^[[:space:]]*(#|$)/ && $kc == k { print $fc; exit }' "$inventory"
}

two_hosts() {
	local i names=() target=() nic_of=() gpu_of=() dir=() addr=() why=()
	local envs=(env DMAPLANE_BUILD="$build") v pick rc=() pids=() skip=
	if [ -n "$hosts" ]; then
		IFS=, read -ra names <<<"$hosts"
	else
		names=("$(inv_field 5 decode 1)" "$(inv_field 5 prefill 1)")
	fi
	if [ ${#names[@]} -ne 2 ] || [ -z "${names[0]}" ] || [ -z "${names[1]}" ] ||
		[ "${names[0]}" = "${names[1]}" ]; then
		echo "hil/run.sh: need two different hosts (--hosts A,B, or an inventory with a decode and a prefill host)" >&2
		exit 2
	fi
	for v in DP_KV_MODEL DP_KV_PROMPT DP_KV_CHUNK DP_KV_WINDOW; do
		[ -z "${!v:-}" ] || envs+=("$v=${!v}")
	done
	results_dir "$root/hil/results/${names[0]}-${names[1]}-$stamp"
	for i in 0 1; do
		target[i]=$(inv_field 1 "${names[i]}" 2)
		target[i]=${target[i]:-${names[i]}}
		nic_of[i]=$(inv_field 1 "${names[i]}" 3)
		[ "${nic_of[i]}" != - ] || nic_of[i]=
		gpu_of[i]=$(inv_field 1 "${names[i]}" 4)
		dir[i]=$out/${names[i]}
		if [ "$sync" = 1 ] && [ "${target[i]}" != local ]; then
			echo "hil: copying the repository to ${target[i]}:$root"
			tar -C "$root" --exclude=./build --exclude=./hil/results \
				--exclude=./.git -cf - . |
				ssh -o BatchMode=yes "${target[i]}" \
					"mkdir -p $(printf %q "$root") && tar -C $(printf %q "$root") -xf -"
		fi
		# One after the other: the hosts may share the repository (NFS).
		echo "hil: preparing ${names[i]} (${target[i]}; log: $out/${names[i]}.prepare.log)"
		on "${target[i]}" "${envs[@]}" hil/host.sh prepare "${dir[i]}" \
			</dev/null >"$out/${names[i]}.prepare.log" 2>&1
		rc[i]=$?
		fetch "$i"
		if [ -f "${dir[i]}/probe.env" ]; then
			ktap_single "$out/hil_reach_${names[i]}.ktap" hil ok "reach_${names[i]}" >/dev/null
		else
			ktap_single "$out/hil_reach_${names[i]}.ktap" hil "not ok" "reach_${names[i]}" \
				"no probe from ${target[i]}: see ${names[i]}.prepare.log" >/dev/null
			why[i]="${names[i]} was not reached"
			continue
		fi
		sed 's/^/  /' "${dir[i]}/probe.txt"
		if pick=$(rdma_pick "${dir[i]}/probe.env" "${nic_of[i]}"); then
			addr[i]=${pick#* }
		else
			why[i]="${names[i]}: $pick"
		fi
		[ "${rc[i]}" = 0 ] || why[i]="${why[i]:-${names[i]} could not be prepared}"
		# Hosts the inventory lists (every line has a gpu field).
		[ -z "${gpu_of[i]}" ] || inventory_check "$i"
	done
	skip="${why[0]:-}${why[0]:+${why[1]:+; }}${why[1]:-}"
	if [ -z "$skip" ]; then
		echo "hil: ${names[0]} (${addr[0]}) decodes, ${names[1]} (${addr[1]}) prefills"
		for i in 0 1; do
			on "${target[i]}" "${envs[@]}" hil/host.sh pair \
				"$([ "$i" = 0 ] && echo decode || echo prefill)" "${dir[i]}" \
				"${addr[i]}" "${addr[1 - i]}" </dev/null >"$out/${names[i]}.pair.log" 2>&1 &
			pids[i]=$!
		done
		for i in 0 1; do
			wait "${pids[i]}"
			rc[i]=$?
		done
	else
		for v in verbs_pair kv_demo; do
			ktap_single "$out/$v.ktap" "$v" ok "$v # SKIP $skip" >/dev/null
		done
	fi
	for i in 0 1; do
		[ -f "${dir[i]}/probe.env" ] || continue
		on "${target[i]}" "${envs[@]}" hil/host.sh finish "${dir[i]}" "${rc[i]}" </dev/null
		fetch "$i"
	done
	echo
	summarize "${names[0]} (decode) and ${names[1]} (prefill), $(date -u '+%F %T UTC')"
}

# A remote host's results into this host's bundle (same path on both).
fetch() { # host index
	[ "${target[$1]}" = local ] && return
	mkdir -p "${dir[$1]}"
	on "${target[$1]}" tar -C "${dir[$1]}" -cf - . </dev/null 2>/dev/null |
		tar -C "${dir[$1]}" -xf - 2>/dev/null
}

# The inventory says what a host has; a lab whose hardware moved fails here
# instead of quietly skipping.
inventory_check() { # host index
	local i=$1 bad=() found pick
	# shellcheck source=/dev/null
	found=$(. "${dir[i]}/probe.env" && echo "$PROBE_GPU")
	if [ -n "${nic_of[i]}" ] && ! pick=$(rdma_pick "${dir[i]}/probe.env" "${nic_of[i]}"); then
		bad+=("nic ${nic_of[i]}: $pick")
	fi
	case ${gpu_of[i]} in
	- | "") ;;
	none) [ -z "$found" ] || bad+=("gpu: inventory says none, probe found $found") ;;
	*) [[ " $found " == *" ${gpu_of[i]} "* ]] ||
		bad+=("gpu: inventory says ${gpu_of[i]}, probe found ${found:-none}") ;;
	esac
	if [ ${#bad[@]} -eq 0 ]; then
		ktap_single "$out/hil_inventory_${names[i]}.ktap" hil ok "inventory_${names[i]}" >/dev/null
	else
		ktap_single "$out/hil_inventory_${names[i]}.ktap" hil "not ok" \
			"inventory_${names[i]}" "$(IFS=';'; echo "${bad[*]}")" >/dev/null
	fi
}

if [ -n "$hosts" ] || [ -n "$inventory" ]; then
	[ -z "$inventory" ] || [ -r "$inventory" ] || { echo "hil/run.sh: cannot read $inventory" >&2; exit 2; }
	[ -z "$only" ] || { echo "hil/run.sh: --suites is for one host; two hosts run the two-host suites" >&2; exit 2; }
	two_hosts
else
	single_host
fi
