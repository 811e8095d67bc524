#!/bin/bash
# In a guest of a gcov kernel: copy the module's coverage counters out of
# /sys/kernel/debug/gcov into $DMAPLANE_RESULTS/gcov/, keeping the paths.
# gcov's debugfs files must be read with cat (cp sees a size of 0). Data of
# a module that was unloaded stays there (gcov_persist), so the counters of
# every load are included. A kernel without gcov: nothing to do.
set -u
gcov=/sys/kernel/debug/gcov
results=${DMAPLANE_RESULTS:?}
[ -d "$gcov" ] || exit 0

find "$gcov" -path '*/src/module/*.gcda' | while read -r f; do
	dest=$results/gcov${f#"$gcov"}
	mkdir -p "${dest%/*}"
	cat "$f" >"$dest" || exit 1
done
