#!/bin/bash
# Boot QEMU guests that run the host's own root filesystem (read-only, with a
# tmpfs overlay) and run one command in each of them. See usage() below.
# shellcheck disable=SC2054  # commas inside QEMU option values are intended
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: vm/launch.sh [options] -- COMMAND [ARGS...]

Boots guest(s) of this host's kernel on the host's / (read-only, writes go to
a tmpfs) and runs COMMAND in each as root with /bin/bash, in the current
directory. A single argument is a bash script line ('cat x; nproc'); several
arguments are a command and its arguments, passed verbatim.

Options:
  --kver KVER       kernel version (default: newest in the modules root with
                    a build link)
  --kernel PATH     bzImage or vmlinux (default /boot/vmlinuz-KVER); a bzImage
                    is unpacked once (cached) and booted through PVH
  --no-pvh          boot --kernel as given (the KASAN debug kernel does not
                    start through PVH: nothing reaches the console)
  --modules DIR     module tree root containing KVER/ (default /lib/modules)
  --topology FILE   NUMA topology fixture (default fixtures/topologies/1node.conf)
  --smp N           number of CPUs (only without --topology)
  --mem MB          guest memory; with several nodes it is split in the
                    fixture's proportions
  --guests N        number of guests, 1..8 (default 1)
  --rxe             bring up Soft-RoCE (rxeK on ethK) before the command
  --gpu-mem MB      give each guest a sim GPU: an ivshmem-plain PCI device
                    whose BAR 2 is MB MiB of host memory (a power of two;
                    dmaplane drives it with sim_gpu=1)
  --timeout SEC     kill each guest after SEC seconds (default 300)
  --results DIR     host results directory (default: a new /tmp/dmaplane-vm.*);
                    guest i uses DIR/guest$i/, which is emptied first
  --append STR      extra kernel command line
  -v                verbose: print QEMU command lines and a per-guest summary
  -h, --help        this text

Network: guest i has eth0 with 10.77.0.(i+1)/24. With 2 guests eth0 is a
point-to-point link between them; with more, the guests form a full mesh,
one NIC per peer (ethK leads to the K-th other guest in index order; NICs
after eth0 reuse the address with a /32 route to their peer). A single guest
gets an eth0 that leads nowhere (useful for rxe loopback).

In the guest: /results is DIR/guest$i (writable, shared with the host);
every other write goes to the tmpfs overlay and is lost. /run is a fresh
tmpfs, so host files there are not visible (the launcher refuses to run from
there); /tmp is part of the overlay, so a clone under /tmp works. Environment: DMAPLANE_RESULTS=/results, DP_GUEST_INDEX, DP_GUEST_COUNT,
DP_GUEST_IP, DP_PEER_IPS (space separated), DP_TOPOLOGY (the machine as
booted, in the fixture format, with --mem and --smp applied). Kernel messages go to the console
at the default "quiet" level; the full log is in dmesg.txt.

Files in DIR/guest$i: guest.env (from the launcher, read by the guest),
topology.conf (DP_TOPOLOGY),
console.log (serial console), qemu.log (QEMU's own messages), started and
boot_seconds (QEMU start until the command started, seconds), output.log
(the command's stdout and stderr), rc (its exit code), dmesg.txt, and
setup_error when the guest could not be set up.

ACCEL=kvm in the environment uses KVM (-cpu host) instead of TCG (-cpu max).
Exit status: 0 if every guest's command exited 0, 1 if any guest failed (one
line per failed guest on stderr), 2 on bad usage or setup errors.
EOF
}

die() {
    echo "launch.sh: $*" >&2
    exit 2
}

here=$(dirname "$(realpath "$0")")
modroot=/lib/modules kver='' kernel='' topology='' smp='' mem=''
guests=1 rxe=0 gpu_mem=0 timeout=300 results='' append='' verbose=0 pvh=1

need_arg() { [[ $# -ge 2 ]] || die "$1 needs an argument"; }
is_uint() { [[ $1 =~ ^(0|[1-9][0-9]*)$ ]]; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --kver) need_arg "$@"; kver=$2; shift ;;
        --kernel) need_arg "$@"; kernel=$2; shift ;;
        --modules) need_arg "$@"; modroot=$2; shift ;;
        --topology) need_arg "$@"; topology=$2; shift ;;
        --smp) need_arg "$@"; smp=$2; shift ;;
        --mem) need_arg "$@"; mem=$2; shift ;;
        --guests) need_arg "$@"; guests=$2; shift ;;
        --rxe) rxe=1 ;;
        --gpu-mem) need_arg "$@"; gpu_mem=$2; shift ;;
        --no-pvh) pvh=0 ;;
        --timeout) need_arg "$@"; timeout=$2; shift ;;
        --results) need_arg "$@"; results=$2; shift ;;
        --append) need_arg "$@"; append=$2; shift ;;
        -v) verbose=1 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
[[ $# -gt 0 ]] || die "no command given (see --help)"
if [[ $# -eq 1 ]]; then
    script=$1
else
    printf -v script '%q ' "$@"
fi

is_uint "$guests" && ((guests >= 1 && guests <= 8)) || die "--guests must be 1..8"
is_uint "$timeout" && ((timeout > 0)) || die "--timeout must be a positive integer"
[[ -z $smp ]] || { is_uint "$smp" && ((smp >= 1)); } || die "--smp must be >= 1"
[[ -z $mem ]] || { is_uint "$mem" && ((mem >= 64)); } || die "--mem must be >= 64 (MiB)"
[[ -z $smp || -z $topology ]] || die "--smp cannot be combined with --topology"
is_uint "$gpu_mem" && ((gpu_mem == 0 || (gpu_mem & (gpu_mem - 1)) == 0)) ||
    die "--gpu-mem must be a power of two (MiB)"
gpu=()
((gpu_mem == 0)) ||
    gpu=(-object "memory-backend-ram,id=gpumem,size=${gpu_mem}M,share=on"
        -device ivshmem-plain,memdev=gpumem)

case ${ACCEL:-tcg} in
    tcg) accel=(-accel tcg -cpu max) ;;
    kvm) accel=(-accel kvm -cpu host) ;;
    *) die "ACCEL must be tcg or kvm" ;;
esac

[[ -d $modroot ]] || die "no module tree $modroot"
modroot=$(realpath "$modroot")
if [[ -z $kver ]]; then
    kver=$(for d in "$modroot"/*/; do
        d=${d%/}
        if [[ -L $d/build ]]; then echo "${d##*/}"; fi
    done | sort -V | tail -n 1)
    [[ -n $kver ]] || die "no kernel with a build link in $modroot (use --kver)"
fi
[[ -d $modroot/$kver ]] || die "no modules for kernel $kver in $modroot"
kernel=${kernel:-/boot/vmlinuz-$kver}
[[ -r $kernel ]] || die "cannot read kernel $kernel"

# The guest reads these host paths through its root, where a fresh tmpfs
# hides the host's /run; dp.init= on the kernel cmdline cannot hold spaces.
for p in "$here" "$PWD" "$modroot"; do
    case $p/ in
        /run/*) die "$p is under /run, which guests do not see" ;;
    esac
done
[[ $here =~ [[:space:]] ]] && die "the launcher's path must not contain spaces"

# --- topology fixture (key=value lines, see fixtures/topologies/README.md) ---
topology=${topology:-$here/../fixtures/topologies/1node.conf}
declare -A topo=()
lineno=0
[[ -r $topology ]] || die "cannot read topology $topology"
while IFS= read -r line || [[ -n $line ]]; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^([a-z0-9_]+)=(.*)$ ]] ||
        die "$topology:$lineno: expected key=value"
    key=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
    [[ $key =~ ^(name|description|nodes|node[0-7]_(cpus|mem_mib|distances))$ ]] ||
        die "$topology:$lineno: unknown key $key"
    [[ -z ${topo[$key]+set} ]] || die "$topology:$lineno: duplicate key $key"
    topo[$key]=$val
done <"$topology"

bad_topo() { die "topology $topology: $*"; }
[[ -n ${topo[name]:-} ]] || bad_topo "missing name"
nodes=${topo[nodes]:-}
is_uint "$nodes" && ((nodes >= 1 && nodes <= 8)) || bad_topo "nodes must be 1..8"
for key in "${!topo[@]}"; do
    [[ $key =~ ^node([0-9])_ ]] && ((BASH_REMATCH[1] >= nodes)) &&
        bad_topo "$key given but nodes=$nodes"
done
node_cpus=() node_mem=() dist=()   # dist[n*nodes+m]: distance from n to m
total_cpus=0 total_mem=0
for ((n = 0; n < nodes; n++)); do
    c=${topo[node${n}_cpus]:-} m=${topo[node${n}_mem_mib]:-}
    is_uint "$c" || bad_topo "node${n}_cpus must be a number"
    is_uint "$m" && ((m > 0)) || bad_topo "node${n}_mem_mib must be > 0"
    read -ra row <<<"${topo[node${n}_distances]:-}"
    ((${#row[@]} == nodes)) || bad_topo "node${n}_distances needs exactly $nodes distances"
    for ((o = 0; o < nodes; o++)); do
        d=${row[o]}
        is_uint "$d" || bad_topo "node${n}_distances: $d is not a number"
        if ((o == n)); then
            ((d == 10)) || bad_topo "node${n}_distances: diagonal must be 10"
        else
            ((d >= 11 && d <= 254)) ||
                bad_topo "node${n}_distances: $d is not in 11..254"
        fi
        dist+=("$d")
    done
    node_cpus+=("$c") node_mem+=("$m")
    total_cpus=$((total_cpus + c)) total_mem=$((total_mem + m))
done
((total_cpus > 0)) || bad_topo "no node has CPUs"
if [[ -n $smp ]]; then      # only possible with the (1-node) default fixture
    node_cpus[0]=$((node_cpus[0] + smp - total_cpus))
    total_cpus=$smp
fi
if [[ -n $mem ]]; then
    # Scale each node to the fixture's share of --mem (2 MiB granules); node 0
    # takes the rounding remainder.
    left=$mem
    for ((n = 1; n < nodes; n++)); do
        node_mem[n]=$((mem * node_mem[n] / total_mem / 2 * 2))
        ((node_mem[n] > 0)) || die "--mem $mem is too small for $nodes nodes"
        left=$((left - node_mem[n]))
    done
    node_mem[0]=$left total_mem=$mem
fi

numa=()
cpu=0
for ((n = 0; n < nodes; n++)); do
    numa+=(-object "memory-backend-ram,id=mem$n,size=${node_mem[n]}M")
    spec="node,nodeid=$n,memdev=mem$n"
    c=${node_cpus[n]}
    ((c == 0)) || spec+=",cpus=$cpu-$((cpu + c - 1))"
    cpu=$((cpu + c))
    numa+=(-numa "$spec")
done
for ((n = 0; n < nodes; n++)); do
    for ((o = 0; o < nodes; o++)); do
        ((o == n)) || numa+=(-numa "dist,src=$n,dst=$o,val=${dist[n * nodes + o]}")
    done
done

# --- initramfs, cached by the content of everything that goes into it ---
cache=${XDG_CACHE_HOME:-${HOME:?}/.cache}/dmaplane
mods=$("$here/mkinitramfs.sh" --list "$kver" "$modroot") || exit 2
# shellcheck disable=SC2086  # $mods: one path per line, no spaces
hash=$(cat "$here/init" "$here/mkinitramfs.sh" /bin/busybox $mods |
    sha256sum | cut -c1-16)
initrd=$cache/initramfs-$kver-$hash.cpio.gz
if [[ ! -e $initrd ]]; then
    mkdir -p "$cache"
    "$here/mkinitramfs.sh" "$kver" "$initrd" "$modroot"
fi

# --- kernel: boot the uncompressed vmlinux through its PVH entry point ---
# Under TCG a bzImage spends ~3 s of every boot decompressing itself. QEMU
# boots the ELF vmlinux inside it directly when the kernel has a PVH entry
# (CONFIG_PVH), so extract that once per image and cache it. Kernels without
# one boot as they are.

# has_pvh FILE: FILE contains the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (18),
# which QEMU needs to boot an ELF kernel.
has_pvh() {
    LC_ALL=C grep -qaP '\x04\0\0\0[\x04\x08]\0\0\0\x12\0\0\0Xen\0' "$1"
}
# elf_complete FILE: FILE is an ELF image holding all its loadable segments,
# i.e. it is not the product of a decompression that stopped early.
elf_complete() {
    local f=$1 size phoff phent phnum i off filesz
    LC_ALL=C cmp -s -n 4 "$f" <(printf '\x7fELF') || return 1
    size=$(stat -c %s "$f")
    read -r phoff < <(od -An -t u8 -j 32 -N 8 "$f")
    read -r phent phnum < <(od -An -t u2 -j 54 -N 4 "$f")
    for ((i = 0; i < phnum; i++)); do
        # p_offset, p_vaddr, p_paddr, p_filesz
        read -r off _ _ filesz < <(od -An -w32 -t u8 -j $((phoff + i * phent + 8)) -N 32 "$f")
        ((off + filesz <= size)) || return 1
    done
}
boot_image() {
    local img=$1 out tmp fmt dec off
    if elf_complete "$img"; then
        echo "$img"
        return
    fi
    out=$cache/vmlinux-$(sha256sum <"$img" | cut -c1-16)
    if [[ ! -e $out && ! -e $out.nopvh ]]; then
        # Try each compressed payload found in the image, as the kernel's
        # scripts/extract-vmlinux does.
        tmp=$(mktemp "$out.XXXXXX")
        for fmt in 'xz -dc --single-stream|\xfd7zXZ\0' 'zstd -dcq|\x28\xb5\x2f\xfd' \
            'gzip -dc|\x1f\x8b\x08'; do
            dec=${fmt%|*}
            for off in $(LC_ALL=C grep -aboP "${fmt#*|}" "$img" | cut -d: -f1); do
                # shellcheck disable=SC2086  # $dec is a command line
                tail -c +$((off + 1)) "$img" | $dec >"$tmp" 2>/dev/null || true
                if elf_complete "$tmp" && has_pvh "$tmp"; then
                    mv "$tmp" "$out"
                    break 2
                fi
            done
        done
        rm -f "$tmp"
        [[ -e $out ]] || : >"$out.nopvh"
    fi
    if [[ -e $out ]]; then echo "$out"; else echo "$img"; fi
}
((pvh)) && kernel=$(boot_image "$kernel")

# --- per-guest setup ---
results=${results:-$(mktemp -d /tmp/dmaplane-vm.XXXXXX)}
mkdir -p "$results"
results=$(realpath "$results")

# QEMU option values escape a comma by doubling it.
qesc() { printf '%s' "${1//,/,,}"; }

# One TCP port per guest pair: the lower index listens, the higher connects.
declare -A port=()
taken=" $(ss -Htan | awk '{ sub(/.*:/, "", $4); printf "%s ", $4 }')"
for ((a = 0; a < guests; a++)); do
    for ((b = a + 1; b < guests; b++)); do
        until p=$((20000 + RANDOM % 40000)) && [[ $taken != *" $p "* ]]; do :; done
        taken+="$p "
        port[$a,$b]=$p
    done
done

guest_ip() { echo "10.77.0.$(($1 + 1))"; }
cmdline="console=ttyS0 quiet panic=-1 dp.init=$here/guest-init.sh $append"
gdir=() pid=() start=() state=() qexit=()

# Kill whatever QEMU is still running when the launcher exits.
cleanup() {
    for i in "${!pid[@]}"; do
        [[ ${state[i]} != running ]] || kill "${pid[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_us() { now=${EPOCHREALTIME//[.,]/}; }

# Prepare and start the guests in index order: a guest's listening sockets
# must be up before a higher-index guest connects to them.
for ((i = 0; i < guests; i++)); do
    gdir[i]=$results/guest$i
    rm -rf "${gdir[i]}"
    mkdir -p "${gdir[i]}"
    net=() peers=()
    for ((j = 0; j < guests; j++)); do
        ((j != i)) || continue
        k=${#peers[@]}
        peers+=("$(guest_ip "$j")")
        if ((i < j)); then
            sock=listen=127.0.0.1:${port[$i,$j]}
        else
            sock=connect=127.0.0.1:${port[$j,$i]}
        fi
        net+=(-netdev "socket,id=net$k,$sock"
            -device "virtio-net-pci,netdev=net$k,mac=52:54:00:77:0$i:0$k")
    done
    if ((guests == 1)); then
        # A hub with a single port: eth0 exists but leads nowhere.
        net+=(-netdev hubport,id=net0,hubid=0
            -device virtio-net-pci,netdev=net0,mac=52:54:00:77:00:00)
        peers+=("")
    fi
    {
        echo "# Written by vm/launch.sh, sourced by vm/guest-init.sh."
        echo "DP_GUEST_INDEX=$i"
        echo "DP_GUEST_COUNT=$guests"
        echo "DP_GUEST_IP=$(guest_ip "$i")"
        printf 'DP_PEER_IPS=%q\n' "$(IFS=' '; echo "${peers[*]}")"
        printf 'DP_NIC_PEERS=(%s)\n' "$(printf '%q ' "${peers[@]}")"
        echo "DP_RXE=$rxe"
        echo "DP_GPU_MEM=$gpu_mem"
        printf 'DP_MODULES=%q\n' "$modroot"
        printf 'DP_CWD=%q\n' "$PWD"
        printf 'DP_SCRIPT=%q\n' "$script"
        # Scenario knobs from the host's environment (sim/scenarios) and
        # the suites to run (tests/run-guest.sh), the ones set;
        # guest-init.sh exports those DP_KNOBS names.
        knobs=()
        for v in DP_STREAM_SECONDS DP_KV_MODEL DP_KV_PROMPT DP_KV_CHUNK \
                 DP_KV_WINDOW DP_FUZZ_SECONDS DP_FUZZ_SEED DP_FUZZ_THREADS \
                 DP_FUZZ_HUNG_SECS DP_TRINITY_SECONDS DP_SOAK_SECONDS \
                 DMAPLANE_SUITES; do
            if [[ -n ${!v:-} ]]; then
                printf '%s=%q\n' "$v" "${!v}"
                knobs+=("$v")
            fi
        done
        printf 'DP_KNOBS=%q\n' "${knobs[*]}"
    } >"${gdir[i]}/guest.env"
    # The machine as booted (--mem and --smp applied), in the fixture
    # format, for tests that compare what the guest kernel reports.
    {
        echo "name=${topo[name]}"
        echo "nodes=$nodes"
        for ((n = 0; n < nodes; n++)); do
            echo "node${n}_cpus=${node_cpus[n]}"
            echo "node${n}_mem_mib=${node_mem[n]}"
            echo "node${n}_distances=${dist[*]:n * nodes:nodes}"
        done
    } >"${gdir[i]}/topology.conf"
    qemu=(qemu-system-x86_64 -name "dp-guest$i"
        -machine q35 "${accel[@]}" -smp "$total_cpus,sockets=$total_cpus"
        -m "${total_mem}M" "${numa[@]}"
        -nodefaults -no-user-config -display none -monitor none -no-reboot
        -chardev "file,id=console,path=$(qesc "${gdir[i]}/console.log")"
        -serial chardev:console
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
        -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
        -fsdev "local,id=results,path=$(qesc "${gdir[i]}"),security_model=none"
        -device virtio-9p-pci,fsdev=results,mount_tag=results
        "${net[@]}" "${gpu[@]}")
    if ((verbose)); then
        echo "guest$i: $(printf '%q ' "${qemu[@]}")" >&2
    fi
    now_us
    start[i]=$now state[i]=running qexit[i]=0
    "${qemu[@]}" </dev/null >"${gdir[i]}/qemu.log" 2>&1 &
    pid[i]=$!
    for ((j = i + 1; j < guests; j++)); do
        p=${port[$i,$j]}
        for ((t = 0; t < 100; t++)); do
            [[ -n $(ss -Htln "sport = :$p") ]] && break
            kill -0 "${pid[i]}" 2>/dev/null || t=100
            sleep 0.1
        done
        ((t < 100)) ||
            die "guest$i: QEMU is not listening on 127.0.0.1:$p, see ${gdir[i]}/qemu.log"
    done
done

# Poll every 0.1 s: record boot time, reap exited guests, kill late ones.
deadline=$((timeout * 1000000))
running=$guests
while ((running > 0)); do
    sleep 0.1
    now_us
    for ((i = 0; i < guests; i++)); do
        [[ ${state[i]} == running ]] || continue
        elapsed=$((now - start[i]))
        if [[ ! -e ${gdir[i]}/boot_seconds && -e ${gdir[i]}/started ]]; then
            tenths=$(((elapsed + 50000) / 100000))
            echo "$((tenths / 10)).$((tenths % 10))" >"${gdir[i]}/boot_seconds"
        fi
        if ! kill -0 "${pid[i]}" 2>/dev/null; then
            wait "${pid[i]}" || qexit[i]=$?
            state[i]=exited
        elif ((elapsed > deadline)); then
            kill -KILL "${pid[i]}"
            # (stderr: silence bash's "Killed" job notice)
            { wait "${pid[i]}"; } 2>/dev/null || true
            state[i]=timeout
        else
            continue
        fi
        running=$((running - 1))
    done
done

status=0
for ((i = 0; i < guests; i++)); do
    g=${gdir[i]} msg=''
    rc=$(cat "$g/rc" 2>/dev/null || true)
    logs="console log: $g/console.log"
    ((qexit[i] == 0)) || logs+=", QEMU exited ${qexit[i]}: see $g/qemu.log"
    if [[ ${state[i]} == timeout ]]; then
        msg="timed out after $timeout s, $logs"
    elif [[ -e $g/setup_error ]]; then
        msg="setup failed: $(<"$g/setup_error"), $logs"
    elif [[ -z $rc ]]; then
        msg="no rc written (crash?), $logs"
    elif [[ $rc != 0 ]]; then
        msg="command exited $rc"
    fi
    if [[ -n $msg ]]; then
        echo "guest$i: $msg" >&2
        status=1
    elif ((verbose)); then
        echo "guest$i: ok, boot $(<"$g/boot_seconds") s, results $g" >&2
    fi
done
exit $status
