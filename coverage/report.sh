#!/bin/bash
# Turn the gcov counters that debug-kernel guests saved under a sim results
# directory into one lcov report for src/module: coverage/html/index.html
# and a one-line summary. Exit status 1 when there is nothing to report.
#
#   coverage/report.sh [SIM_RESULTS_DIR]    (default build/sim)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
sim=${1:-$root/build/sim}
work=$root/build/coverage
html=$root/coverage/html
rc=(--rc lcov_branch_coverage=1)

rm -rf "$work" "$html"
mkdir -p "$work"
infos=()
n=0
# Each guest's counters beside a copy of the matching .gcno notes, so that
# guests never overwrite each other's data.
while read -r gcda; do
	obj=${gcda#*/gcov}
	obj=${obj%/*}
	dir=$work/g$n
	mkdir -p "$dir"
	cp "$obj"/*.gcno "$dir/"
	cp "${gcda%/*}"/*.gcda "$dir/"
	lcov -q "${rc[@]}" --capture --directory "$dir" --base-directory "$obj" \
		--output-file "$dir.info" 2>/dev/null
	infos+=(-a "$dir.info")
	n=$((n + 1))
done < <(find "$sim" -path '*/gcov/*/src/module/main.gcda' 2>/dev/null)

if [ "$n" -eq 0 ]; then
	echo "coverage: no gcov data under $sim (run the sim on the debug kernel)" >&2
	exit 1
fi
lcov -q "${rc[@]}" "${infos[@]}" --output-file "$work/all.info"
lcov -q "${rc[@]}" --extract "$work/all.info" '*/src/module/*' \
	--output-file "$work/module.info"
genhtml -q "${rc[@]}" --output-directory "$html" "$work/module.info" >/dev/null

lcov "${rc[@]}" --summary "$work/module.info" 2>&1 | awk -v n="$n" '
	/lines\.*:/ { l = $2 } /functions\.*:/ { f = $2 } /branches\.*:/ { b = $2 }
	END { printf "coverage src/module (%d guests): lines %s, functions %s, branches %s -> coverage/html/index.html\n", n, l, f, b }'
