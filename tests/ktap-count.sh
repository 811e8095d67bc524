# shellcheck shell=bash
# Sourced by the runners that print the closing "N passed, N failed, N
# skipped" (sim/run.sh, hil/run.sh).
#
# ktap_count FILE...: prints "passed failed skipped" over KTAP files; cases
# a suite planned but never reported (it crashed) count as failed.
ktap_count() {
	awk '
	FNR == 1 { if (plan > seen) failed += plan - seen; plan = 0; seen = 0 }
	/^1\.\.[0-9]+$/ { plan = substr($0, 4) + 0 }
	/^not ok [0-9]+/ { failed++; seen++; next }
	/^ok [0-9]+.*# SKIP/ { skipped++; seen++; next }
	/^ok [0-9]+/ { passed++; seen++ }
	END { if (plan > seen) failed += plan - seen
	      printf "%d %d %d\n", passed, failed, skipped }' "$@"
}
