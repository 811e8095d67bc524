#!/bin/bash
# Debian's trinity (2023.01) as an outside fuzzer of /dev/dmaplane, for a
# bounded time. Run as root in a throwaway guest with the module loaded:
#
#   tests/fuzz/trinity.sh SECONDS RESULTS_DIR
#
# Writes RESULTS_DIR/trinity.txt (trinity's output, then the figures) and
# prints one line: "trinity: N syscalls, M dmaplane ioctls, seed S, T s",
# M being how far debugfs's "ioctls:" grew (it counts the commands that
# got past the number and argument checks into a handler). Exit 0:
# trinity ran, M >= TRINITY_MIN_IOCTLS, and trinity stopped by itself or
# at the time bound; 1 otherwise; 2 when it cannot run. The kernel log is
# the caller's to check.
#
# Environment: TRINITY_SEED (default: a random one, printed),
# TRINITY_CHILDREN (default: the CPUs), TRINITY_SYSCALLS (-N; default
# 20000 a second, a backstop behind the time bound), TRINITY_MIN_IOCTLS
# (default 50), TRINITY_DMAPLANE_CMDS=0: trinity's own ioctl numbers only
# (see below); the proof is then the kprobe count of calls that entered
# dmaplane_ioctl at all.
#
# How trinity is pointed at the device:
#  - --enable-fds=pseudo,testfile -V /dev/dmaplane: every fd it passes is
#    an open of the device. "pseudo" opens the -V path; the testfile
#    provider's trinity-testfile1..4 are symlinks to the node in a
#    directory the user nobody cannot write, so its unlink() fails and its
#    open(O_CREAT) opens the device: 21 fds, 21 contexts. (--disable-fds
#    with the ten names of --help leaves fanotify, inotify, userfaultfd
#    and bpf on.)
#  - -c: the calls that enter the module: ioctl (and compat_ptr_ioctl for
#    the 32-bit one), mmap, munmap and mremap (vm_ops, should a mapping
#    succeed), open of the -V path (open, and release when the child
#    exits). Not read, write, lseek: no such fops, the VFS answers them.
#    Not close: a child that closes one of the shared fds makes EBADF
#    calls with it until it exits.
#  - As nobody (setpriv): as root trinity wants --dangerous and then
#    sleeps 10 s, and --dropprivs is experimental. The node is 0666 for
#    the run. What needs CAP_SYS_ADMIN (NUMA bench, GPU pin) gets -EPERM.
#  - In its own PID namespace (and /proc, which trinity reads by pid), so
#    no child, and no fd of the device, outlives trinity.
#  - A preloaded shim (tests/fuzz/trinity_shim.c, built by make user):
#    1. fstat() fails on the device. Trinity's only fstat() is in its
#       ioctl group lookup, which runs every group's fd_test; those of the
#       btrfs, ext, socket and vfs groups walk the object lists of the
#       testfile, socket, pipe and pseudo providers, a NULL pointer when
#       the provider is off or made nothing, and nearly every child
#       segfaulted before its ioctl. Without fstat() the lookup finds no
#       group and trinity takes its generic path (a random number).
#    2. Trinity has no group for dmaplane: its numbers (random, or 1 in 100
#       another driver's) about never carry magic 0xD7 and a command
#       number, so no handler would run. Standing in for that group, the
#       shim gives 3 ioctls in 4 on the device one of the UAPI header's
#       DMAPLANE_IOC_* (1 in 16 with one bit flipped); the argument stays
#       trinity's. The pick depends on trinity's number and the child's
#       count of such calls only, so the seed replays it as far as trinity
#       replays itself. 32-bit calls (int 0x80) pass the shim by.
set -u

usage() {
	echo "usage: $0 SECONDS RESULTS_DIR" >&2
	exit 2
}
[ $# = 2 ] || usage
seconds=$1 results=$2
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage
mkdir -p "$results" || exit 2
out=$results/trinity.txt
: >"$out" || exit 2

root=$(cd "$(dirname "$0")/../.." && pwd)
shim=${DMAPLANE_BUILD:-$root/build}/tests/trinity_shim.so
dev=/dev/dmaplane
info=/sys/kernel/debug/dmaplane/info
tracing=/sys/kernel/tracing
seed=${TRINITY_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
children=${TRINITY_CHILDREN:-$(nproc)}
nsyscalls=${TRINITY_SYSCALLS:-$((seconds * 20000))}
min=${TRINITY_MIN_IOCTLS:-50}
cmds=${TRINITY_DMAPLANE_CMDS:-1}
[[ $cmds =~ ^[01]$ ]] || usage

# One line on stdout and at the end of trinity.txt, then exit.
finish() { # rc line
	echo "$2" | tee -a "$out"
	exit "$1"
}
cannot() {
	finish 2 "trinity: cannot run: $*"
}

[ "$(id -u)" = 0 ] || cannot "not root"
[ -c "$dev" ] || cannot "no $dev (module not loaded?)"
[ -r "$info" ] || cannot "no $info (debugfs?)"
for tool in trinity setpriv unshare timeout; do
	command -v "$tool" >/dev/null || cannot "no $tool"
done
nobody=$(id -u nobody) || cannot "no user nobody"
nogroup=$(id -g nobody)
ioctls() { awk '$1 == "ioctls:" { print $2 }' "$info"; }

work=$(mktemp -d /tmp/dp-trinity.XXXXXX) || cannot "no scratch directory"
mode=$(stat -c %a "$dev")
kprobes=
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	chmod "$mode" "$dev"
	[ -z "$kprobes" ] || kprobes_off
	rm -rf "$work"
}
trap cleanup EXIT

# The testfiles, in a directory that nobody can enter but not write.
chmod 755 "$work" || cannot "cannot chmod $work"
for i in 1 2 3 4; do
	ln -s "$dev" "$work/trinity-testfile$i" || cannot "cannot link $dev"
done

[ -r "$shim" ] || cannot "no $shim (make user builds it)"

# How often trinity entered the module at all, whatever the command: kprobe
# hit counts, reported where the kernel has kprobe events.
kprobes_on() {
	[ -w "$tracing/kprobe_events" ] ||
		mount -t tracefs nodev "$tracing" 2>/dev/null
	local fn
	kprobes_off 2>/dev/null
	for fn in ioctl mmap open release; do
		echo "p:dptrinity/dptrinity_$fn dmaplane_$fn" \
			>>"$tracing/kprobe_events" || return 1
	done 2>/dev/null
	kprobes=1
	echo 1 >"$tracing/events/dptrinity/enable"
}
kprobes_off() {
	echo 0 >"$tracing/events/dptrinity/enable"
	local fn
	for fn in ioctl mmap open release; do
		echo "-:dptrinity/dptrinity_$fn" >>"$tracing/kprobe_events"
	done
	kprobes=
}
kprobes_hits() {
	awk '$1 ~ /^dptrinity_/ { sub(/^dptrinity_/, "", $1)
		printf "%s%s %s", s, $1, $2; s = ", " }' "$tracing/kprobe_profile"
}
kprobes_on || kprobes_off 2>/dev/null

chmod 666 "$dev" || cannot "cannot chmod $dev"
echo "trinity: seed $seed, $seconds s, $children children, dmaplane commands $cmds" >>"$out"
before=$(ioctls)
start=$(date +%s)
# SIGINT at the bound (trinity's ctrl-c: it stops its children and says
# how many calls it made), SIGKILL 30 s later. PID 1 of the namespace is
# the sh, which ignores the SIGINT; timeout sends it to its process group,
# where trinity is too.
# shellcheck disable=SC2016  # $@ is the sh's
(cd "$work" && timeout -s INT -k 30 "$seconds" \
	unshare --pid --fork --mount-proc sh -c '"$@"; exit $?' sh \
	setpriv --reuid="$nobody" --regid="$nogroup" --clear-groups \
	env LD_PRELOAD="$shim" TRINITY_DMAPLANE_CMDS="$cmds" \
	trinity -q -l off --stats --enable-fds=pseudo,testfile -V "$dev" \
	-c ioctl -c mmap -c munmap -c mremap -c open \
	-C "$children" -N "$nsyscalls" -s "$seed") >>"$out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
after=$(ioctls)
hits=
if [ -n "$kprobes" ]; then
	hits=$(kprobes_hits)
	kprobes_off 2>/dev/null
fi

calls=$(sed -n 's/.*Ran \([0-9]*\) syscalls.*/\1/p' "$out" | tail -1)
delta=$((after - before))
echo "module: ioctls: $before -> $after${hits:+; entered: $hits}" >>"$out"
line="trinity: ${calls:-?} syscalls, $delta dmaplane ioctls, seed $seed, $secs s"
case $rc in
0) how="stopped by itself" ;;
124) how="stopped at the time bound" ;;
137) finish 1 "$line: did not stop within 30 s of SIGINT, killed" ;;
*) finish 1 "$line: trinity exited $rc: $(grep -v '^\[main\] \(futex\|sysv_shm\)' "$out" | tail -2 | tr '\n' ' ')" ;;
esac
[ -n "$calls" ] || finish 1 "$line: trinity $how without its summary"
why=$(sed -n 's/.*Bailing main loop because \(.*\)\.$/\1/p' "$out" | tail -1)
echo "trinity $how${why:+ ($why)}" >>"$out"
if [ "$cmds" = 0 ]; then
	reached=$(echo "$hits" | sed -n 's/^ioctl \([0-9]*\).*/\1/p')
	[ -n "$reached" ] ||
		finish 1 "$line: no kprobe events to count calls into the module"
	what="ioctls entered dmaplane_ioctl"
else
	reached=$delta what="commands reached the module's handlers"
fi
[ "$reached" -ge "$min" ] || finish 1 "$line: fewer than $min $what"
finish 0 "$line"
