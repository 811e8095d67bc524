#!/bin/bash
# Stage 2: PID 1 inside the guest's real root (the host's / read-only over
# virtio-9p plus a tmpfs overlay; see vm/init). Sets up the guest, runs the
# command that vm/launch.sh wrote to /results/guest.env, records its exit
# code and dmesg, and powers off.
#
# No `set -e`: PID 1 must reach power-off on every path, so failures are
# handled explicitly and the EXIT trap powers off whatever happens.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
R=/results

log() { echo "dmaplane guest: $*" >/dev/console; }

poweroff_now() {
    dmesg >"$R/dmesg.txt" 2>/dev/null
    sync
    echo o >/proc/sysrq-trigger
    # Power-off is asynchronous; should it not happen, PID 1 exiting panics
    # the kernel and panic=-1 with QEMU's -no-reboot ends the VM as well.
    sleep 20
}
trap poweroff_now EXIT

# Setup failed: say why on the console and in results/setup_error (the host
# reports it), then power off without running the command.
fail() {
    log "setup failed: $*"
    echo "$*" >"$R/setup_error"
    exit 1
}

# mnt TYPE DIR [OPTIONS]: mount unless DIR already is a mount point (stage 1
# moved /proc, /sys and /dev here).
mnt() {
    mkdir -p "$2"
    mountpoint -q "$2" || mount -t "$1" ${3:+-o "$3"} "$1" "$2" ||
        fail "cannot mount $1 on $2"
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
    local tries=$(($1 * 10))
    shift
    until "$@"; do
        ((--tries > 0)) || return 1
        sleep 0.1
    done
}

mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
mnt devpts /dev/pts gid=5,mode=620,ptmxmode=666
mnt tmpfs /dev/shm mode=1777
mnt tmpfs /run mode=0755
mnt tmpfs /tmp mode=1777
mnt debugfs /sys/kernel/debug
mkdir -p $R
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results $R ||
    fail "cannot mount the results share (9p tag results)"
[[ -r $R/guest.env ]] || fail "no $R/guest.env"
# shellcheck source=/dev/null  # written by vm/launch.sh with printf %q
source "$R/guest.env" || fail "cannot read $R/guest.env"

# A custom kernel's modules live outside /lib/modules on the host.
if [[ $DP_MODULES != /lib/modules ]]; then
    mount --bind "$DP_MODULES" /lib/modules || fail "cannot bind $DP_MODULES"
fi
if modprobe -q configfs; then
    mnt configfs /sys/kernel/config
fi

hostname "dp-guest$DP_GUEST_INDEX"
ip link set lo up

# NIC k (ethK) is the link to DP_NIC_PEERS[k]. eth0 carries the guest's /24;
# further NICs (full mesh, >2 guests) reuse the address and get a host route
# to their one peer.
modprobe virtio_net || fail "cannot load virtio_net"
for k in "${!DP_NIC_PEERS[@]}"; do
    wait_for 10 test -e "/sys/class/net/eth$k" || fail "eth$k did not appear"
    if ((k == 0)); then
        ip addr add "$DP_GUEST_IP/24" dev eth0
    else
        ip addr add "$DP_GUEST_IP/32" dev "eth$k"
    fi
    ip link set "eth$k" up || fail "cannot bring up eth$k"
    if ((k > 0)); then
        ip route add "${DP_NIC_PEERS[k]}/32" dev "eth$k" ||
            fail "cannot add route via eth$k"
    fi
done

rxe_active() { rdma link show "rxe$1/1" 2>/dev/null | grep -q 'state ACTIVE'; }
if ((DP_RXE)); then
    modprobe -a rdma_rxe rdma_ucm || fail "cannot load rdma_rxe/rdma_ucm"
    for k in "${!DP_NIC_PEERS[@]}"; do
        rdma link add "rxe$k" type rxe netdev "eth$k" ||
            fail "cannot add rxe$k on eth$k"
        wait_for 15 rxe_active "$k" || fail "rxe$k did not become ACTIVE"
    done
fi

export DMAPLANE_RESULTS=$R DP_GUEST_INDEX DP_GUEST_COUNT DP_GUEST_IP DP_PEER_IPS
cd "$DP_CWD" || fail "cannot cd to $DP_CWD"
: >"$R/started"
/bin/bash -c "$DP_SCRIPT" </dev/null 2>&1 | tee "$R/output.log" >/dev/console
echo "${PIPESTATUS[0]}" >"$R/rc"
