#!/bin/bash
# What hardware does this machine have for dmaplane? Reads sysfs and procfs
# (plus nvidia-smi when installed, and dmaplanectl when the module is
# loaded), so it runs on any Debian host and in sim guests.
#
#   hil/probe.sh OUT
#
# Writes OUT/probe.json (for tools), OUT/probe.txt (the same facts for
# people) and OUT/probe.env (what hil/run.sh decides with: GPU providers
# and RDMA ports, as shell assignments). Sourced, it only defines sim_gpus.
set -u

# PCI addresses of dmaplane sim GPUs: QEMU ivshmem-plain devices (1af4:1110,
# vm/launch.sh --gpu-mem), which dmaplane drives with sim_gpu=1.
sim_gpus() {
	local d vendor device
	for d in /sys/bus/pci/devices/*; do
		read -r vendor 2>/dev/null <"$d/vendor" || continue
		read -r device 2>/dev/null <"$d/device" || continue
		[ "$vendor:$device" = 0x1af4:0x1110 ] && echo "${d##*/}"
	done
	return 0
}
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

[ $# -eq 1 ] || { echo "usage: hil/probe.sh OUT" >&2; exit 2; }
out=$1
mkdir -p "$out" || exit 1
root=$(cd "$(dirname "$0")/.." && pwd)
ctl=${DMAPLANE_BUILD:-$root/build}/tools/dmaplanectl

# A JSON string, or null for an empty value.
js() {
	local s=$1
	[ -n "$s" ] || { printf null; return; }
	s=${s//\\/\\\\} s=${s//\"/\\\"} s=${s//$'\t'/ } s=${s//$'\n'/\\n} s=${s//$'\r'/}
	printf '"%s"' "$s"
}
jb() { if [ "$1" -ne 0 ]; then printf true; else printf false; fi; }
# A JSON array of already-encoded values.
jarr() { local IFS=,; printf '[%s]' "$*"; }
# First line of a file, empty when unreadable.
first() { local v=; read -r v 2>/dev/null <"$1"; printf '%s' "$v"; }
# probe.txt: a section's heading, then its indented detail lines.
text=()
section() { text+=("$(printf '%-10s %s' "$1" "$2")"); }
detail() { text+=("  $1"); }

host=$(hostname)
kver=$(uname -r)
kdir=/lib/modules/$kver/build
headers=0
[ -d "$kdir" ] && headers=1
cpus=$(getconf _NPROCESSORS_ONLN)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
mem_mib=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024))
json=$(printf '{"host": %s, "date": %s, "kernel": %s, "arch": %s, "kernel_build_dir": %s, "kernel_headers": %s, "cpus": %d, "cpu_model": %s, "mem_mib": %d' \
	"$(js "$host")" "$(js "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(js "$kver")" \
	"$(js "$(uname -m)")" "$(js "$kdir")" "$(jb $headers)" "$cpus" \
	"$(js "$cpu_model")" "$mem_mib")
section host "$host ($(uname -m)), $(date -u '+%F %T UTC')"
section kernel "$kver; $kdir: $([ $headers = 1 ] && echo present || echo MISSING, no module build)"
section cpus "$cpus online (${cpu_model:-?}), memory $mem_mib MiB"

# NUMA: every node with its CPUs, memory and SLIT row.
items=() lines=()
for d in $(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | sort -V); do
	id=${d##*node}
	cpulist=$(first "$d/cpulist")
	mib=$(($(awk '/MemTotal:/ { print $4 }' "$d/meminfo") / 1024))
	read -ra dist <<<"$(first "$d/distance")"
	items+=("$(printf '{"node": %d, "cpulist": %s, "mem_mib": %d, "distances": %s}' \
		"$id" "$(js "$cpulist")" "$mib" "$(jarr "${dist[@]}")")")
	lines+=("$(printf 'node %-3s cpus %-12s %8d MiB  distances %s' "$id" \
		"${cpulist:--}" "$mib" "${dist[*]}")")
done
json+=$(printf ', "numa": {"nodes": %d, "node": %s}' "${#items[@]}" "$(jarr "${items[@]}")")
section numa "${#items[@]} node(s)"
for l in "${lines[@]}"; do detail "$l"; done

# IOMMU: hardware units, groups and their default domain types, and what
# the kernel command line asked for.
items=() units=
for d in /sys/class/iommu/*; do
	[ -e "$d" ] || continue
	items+=("$(js "${d##*/}")")
	units+=" ${d##*/}"
done
groups=$(find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
types=$(sort -u /sys/kernel/iommu_groups/*/type 2>/dev/null | tr '\n' ' ')
types=${types% }
type_items=()
for t in $types; do type_items+=("$(js "$t")"); done
cmdline=$(grep -oE '(^| )(intel_iommu|amd_iommu|iommu|iommu\.[a-z]+)=[^ ]*' /proc/cmdline |
	tr -d ' ' | tr '\n' ' ')
cmdline=${cmdline% }
json+=$(printf ', "iommu": {"enabled": %s, "units": %s, "groups": %d, "domain_types": %s, "cmdline": %s}' \
	"$(jb ${#items[@]})" "$(jarr "${items[@]}")" "$groups" \
	"$(jarr "${type_items[@]}")" "$(js "$cmdline")")
if [ ${#items[@]} -gt 0 ]; then
	section iommu "on:$units; $groups groups, default domains ${types:-?}; cmdline: ${cmdline:-none}"
else
	section iommu "off (no /sys/class/iommu units); cmdline: ${cmdline:-none}"
fi

# RDMA: each device's driver (soft-RoCE has no PCI device, only the netdev
# it sits on, in "parent") and each port's state, link layer, netdev and
# IPv4 address (what rdma_cm connects to).
items=() lines=() rdma_env=()
for d in /sys/class/infiniband/*; do
	[ -e "$d" ] || continue
	name=${d##*/}
	if [ -e "$d/device/driver" ]; then
		driver=$(basename "$(readlink -f "$d/device/driver")")
	elif [ -e "$d/parent" ]; then
		driver=soft
		[ "$(first "$d/node_desc")" = rxe ] && driver=rxe
	else
		driver=unknown
	fi
	ports=()
	for p in "$d"/ports/*; do
		[ -e "$p" ] || continue
		state=$(first "$p/state")
		state=${state#*: }
		ll=$(first "$p/link_layer")
		netdev=$(first "$p/gid_attrs/ndevs/0")
		[ -n "$netdev" ] || netdev=$(first "$d/parent")
		ip4=
		[ -z "$netdev" ] || ip4=$(ip -4 -o addr show dev "$netdev" 2>/dev/null |
			awk '{ sub(/\/.*/, "", $4); print $4; exit }')
		ports+=("$(printf '{"port": %d, "state": %s, "link_layer": %s, "rate": %s, "netdev": %s, "ipv4": %s}' \
			"${p##*/}" "$(js "$state")" "$(js "$ll")" \
			"$(js "$(first "$p/rate")")" "$(js "$netdev")" "$(js "$ip4")")")
		rdma_env+=("$name ${p##*/} $driver ${state:--} ${ll:--} ${netdev:--} ${ip4:--}")
		lines+=("$(printf '%-10s driver %-10s port %s %-6s %-10s netdev %-8s %s' \
			"$name" "$driver" "${p##*/}" "${state:-?}" "${ll:-?}" \
			"${netdev:--}" "${ip4:-no IPv4 address}")")
	done
	items+=("$(printf '{"name": %s, "driver": %s, "fw_ver": %s, "node_guid": %s, "ports": %s}' \
		"$(js "$name")" "$(js "$driver")" "$(js "$(first "$d/fw_ver")")" \
		"$(js "$(first "$d/node_guid")")" "$(jarr "${ports[@]}")")")
done
json+=$(printf ', "rdma": %s' "$(jarr "${items[@]}")")
section rdma "${#items[@]} device(s)"
for l in "${lines[@]}"; do detail "$l"; done

# GPUs: NVIDIA's driver lists each GPU under /proc/driver/nvidia/gpus (and
# nvidia-smi, when installed); GPUDirect RDMA needs nvidia_peermem. The sim
# GPU is a PCI function with a memory BAR (BAR 2: resource line 3).
items=() lines=()
for d in /proc/driver/nvidia/gpus/*; do
	[ -e "$d" ] || continue
	model=$(sed -n 's/^Model:[[:space:]]*//p' "$d/information" 2>/dev/null)
	items+=("$(printf '{"bus": %s, "model": %s}' "$(js "${d##*/}")" "$(js "$model")")")
	lines+=("nvidia ${d##*/}: ${model:-?}")
done
smi=()
if command -v nvidia-smi >/dev/null; then
	while IFS= read -r l; do
		smi+=("$(js "$l")")
		lines+=("nvidia-smi: $l")
	done < <(nvidia-smi -L 2>/dev/null)
fi
nvidia=0 peermem=0
[ -e /sys/module/nvidia ] && nvidia=1
[ -e /sys/module/nvidia_peermem ] && peermem=1
sims=()
for pci in $(sim_gpus); do
	read -r start end _ < <(sed -n 3p "/sys/bus/pci/devices/$pci/resource")
	mib=$(((end - start + 1) >> 20))
	sims+=("$(printf '{"pci": %s, "bar_mib": %d}' "$(js "$pci")" "$mib")")
	lines+=("dmaplane sim GPU (ivshmem 1af4:1110) at $pci, $mib MiB")
done
providers=()
[ ${#items[@]} -gt 0 ] || [ ${#smi[@]} -gt 0 ] && providers+=(nvidia)
[ ${#sims[@]} -gt 0 ] && providers+=(sim)
provider_items=()
for p in "${providers[@]}"; do provider_items+=("$(js "$p")"); done
json+=$(printf ', "gpu": {"present": %s, "providers": %s, "nvidia": %s, "nvidia_smi": %s, "nvidia_module": %s, "nvidia_peermem": %s, "sim": %s}' \
	"$(jb ${#providers[@]})" "$(jarr "${provider_items[@]}")" \
	"$(jarr "${items[@]}")" "$(jarr "${smi[@]}")" "$(jb $nvidia)" \
	"$(jb $peermem)" "$(jarr "${sims[@]}")")
missing_gpu="no NVIDIA GPU (/proc/driver/nvidia/gpus empty$(command -v nvidia-smi >/dev/null || echo ', no nvidia-smi')) and no dmaplane sim GPU (PCI 1af4:1110)"
if [ ${#providers[@]} -gt 0 ]; then
	section gpu "${providers[*]}; nvidia module $([ $nvidia = 1 ] && echo loaded || echo absent), nvidia_peermem $([ $peermem = 1 ] && echo loaded || echo absent)"
else
	section gpu "none: $missing_gpu"
fi
for l in "${lines[@]}"; do detail "$l"; done

# dmaplane as loaded: the module's own view (GET_INFO, GET_TOPOLOGY, its
# RDMA device registry) through dmaplanectl's JSON.
loaded=0
[ -e /sys/module/dmaplane ] && loaded=1
json+=$(printf ', "dmaplane": {"loaded": %s, "srcversion": %s' "$(jb $loaded)" \
	"$(js "$(first /sys/module/dmaplane/srcversion)")")
if [ $loaded = 1 ] && [ -x "$ctl" ]; then
	for cmd in info topo rdma; do
		j=$("$ctl" "$cmd" --json 2>/dev/null)
		json+=", \"$cmd\": ${j:-null}"
	done
	section dmaplane "loaded ($("$ctl" info 2>&1 | sed -n 's/^module version *//p'))"
	while IFS= read -r l; do detail "$l"; done < <("$ctl" info 2>&1; "$ctl" topo 2>&1; "$ctl" rdma 2>&1)
else
	section dmaplane "$([ $loaded = 1 ] && echo "loaded; no $ctl" || echo "not loaded")"
fi
json+='}}'

printf '%s\n' "$json" >"$out/probe.json"
printf '%s\n' "${text[@]}" >"$out/probe.txt"
{
	echo "# Written by hil/probe.sh: what hil/run.sh decides with."
	printf 'PROBE_GPU=%q\n' "${providers[*]}"
	printf 'PROBE_NO_GPU=%q\n' "$missing_gpu"
	# One entry per RDMA port: device port driver state link_layer netdev ipv4.
	printf 'PROBE_RDMA=('
	[ ${#rdma_env[@]} -eq 0 ] || printf '%q ' "${rdma_env[@]}"
	echo ')'
} >"$out/probe.env"
