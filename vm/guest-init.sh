#!/bin/bash
# Stage 2: PID 1 inside the guest's real root (the host's / read-only over
# virtio-9p plus a tmpfs overlay; see vm/init). Sets up the guest, runs the
# command that vm/launch.sh wrote to /results/guest.env, records its exit
# code and dmesg, and powers off.
#
# Under TCG every exec from the 9p root costs 50-300 ms, so this script uses
# bash builtins and batches work into few commands (one mount -a, one ip).
#
# No `set -e`: PID 1 must reach power-off on every path, so failures are
# handled explicitly and the EXIT trap powers off whatever happens.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
R=/results

log() { echo "dmaplane guest: $*" >/dev/console; }

# busybox's poweroff -f calls reboot(2) directly, so the power-off runs in
# PID 1 itself. (The asynchronous sysrq-trigger "o" raced with PID 1: it
# shuts down the 9p root under PID 1, PID 1 then exits and panics while the
# power-off is still stopping CPUs, and the guest could hang.) Should the
# call fail, PID 1 exits, the kernel panics, and with panic=-1 and QEMU's
# -no-reboot the VM ends anyway.
poweroff_now() {
    dmesg >"$R/dmesg.txt" 2>/dev/null
    sync
    /bin/busybox poweroff -f
}
trap poweroff_now EXIT

# Setup failed: say why on the console and in results/setup_error (the host
# reports it), then power off without running the command.
fail() {
    log "setup failed: $*"
    echo "$*" >"$R/setup_error"
    exit 1
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

# The root overlay is writable, so the guest gets its own fstab (the host's
# entries mean nothing here). /tmp stays part of the overlay so that a clone
# under the host's /tmp is visible in the guest. proc, sys and dev were moved
# in by stage 1; mount -a skips what is already mounted.
cat >/etc/fstab <<EOF
proc     /proc              proc     defaults 0 0
sysfs    /sys               sysfs    defaults 0 0
devtmpfs /dev               devtmpfs defaults 0 0
devpts   /dev/pts           devpts   X-mount.mkdir,gid=5,mode=620,ptmxmode=666 0 0
tmpfs    /dev/shm           tmpfs    X-mount.mkdir,mode=1777 0 0
tmpfs    /run               tmpfs    mode=0755 0 0
debugfs  /sys/kernel/debug  debugfs  defaults 0 0
results  $R           9p       X-mount.mkdir,trans=virtio,version=9p2000.L,msize=512000 0 0
EOF
mount -a || fail "mount -a failed (see the console log)"
# What udev would create: bash process substitution needs /dev/fd.
ln -s /proc/self/fd /dev/fd && ln -s fd/0 /dev/stdin && ln -s fd/1 /dev/stdout &&
    ln -s fd/2 /dev/stderr || fail "cannot create the /dev/fd links"
[[ -r $R/guest.env ]] || fail "no $R/guest.env"
# shellcheck source=/dev/null  # written by vm/launch.sh with printf %q
source "$R/guest.env" || fail "cannot read $R/guest.env"

# A custom kernel's modules live outside /lib/modules on the host.
if [[ $DP_MODULES != /lib/modules ]]; then
    mount --bind "$DP_MODULES" /lib/modules || fail "cannot bind $DP_MODULES"
fi

echo "dp-guest$DP_GUEST_INDEX" >/proc/sys/kernel/hostname

# NIC k (ethK, driver loaded by stage 1) is the link to DP_NIC_PEERS[k].
# eth0 carries the guest's /24; further NICs (full mesh, >2 guests) reuse the
# address with a host route to their one peer.
ipcmds="link set lo up"$'\n'
for k in "${!DP_NIC_PEERS[@]}"; do
    wait_for 10 test -e "/sys/class/net/eth$k" || fail "eth$k did not appear"
    if ((k == 0)); then
        ipcmds+="addr add $DP_GUEST_IP/24 dev eth0"$'\n'
        ipcmds+="link set eth0 up"$'\n'
    else
        ipcmds+="addr add $DP_GUEST_IP/32 dev eth$k"$'\n'
        ipcmds+="link set eth$k up"$'\n'
        ipcmds+="route add ${DP_NIC_PEERS[k]}/32 dev eth$k"$'\n'
    fi
done
ip -batch - <<<"$ipcmds" || fail "network setup failed"

rxe_active() {
    local state
    read -r state <"/sys/class/infiniband/rxe$1/ports/1/state" 2>/dev/null &&
        [[ $state == *ACTIVE* ]]
}
if ((DP_RXE)); then
    modprobe -a rdma_rxe rdma_ucm || fail "cannot load rdma_rxe/rdma_ucm"
    for k in "${!DP_NIC_PEERS[@]}"; do
        rdma link add "rxe$k" type rxe netdev "eth$k" ||
            fail "cannot add rxe$k on eth$k"
        wait_for 15 rxe_active "$k" || fail "rxe$k did not become ACTIVE"
    done
fi

# configfs is mounted when the kernel has it (built in, or loaded above as a
# dependency of rdma_cm; its module creates the mount point); it is not
# loaded just for this.
if [[ -d /sys/kernel/config ]]; then
    mount -t configfs configfs /sys/kernel/config || fail "cannot mount configfs"
fi

export DMAPLANE_RESULTS=$R DP_GUEST_INDEX DP_GUEST_COUNT DP_GUEST_IP DP_PEER_IPS
# The scenario knobs launch.sh passed on (DP_KNOBS names them).
for v in ${DP_KNOBS:-}; do
	export "${v?}"
done
export DP_TOPOLOGY=$R/topology.conf
cd "$DP_CWD" || fail "cannot cd to $DP_CWD"
: >"$R/started"
/bin/bash -c "$DP_SCRIPT" </dev/null 2>&1 | tee "$R/output.log" >/dev/console
echo "${PIPESTATUS[0]}" >"$R/rc"
