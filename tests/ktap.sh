# shellcheck shell=bash
# Sourced by the guest-side shell runners.
#
# ktap_single FILE SUITE RESULT NAME [DIAGNOSTIC]: write (and echo) a KTAP
# file holding one case; RESULT is "ok" or "not ok".
ktap_single() {
	{
		printf 'KTAP version 1\n# suite: %s\n1..1\n' "$2"
		[ -z "${5:-}" ] || printf '# %s\n' "$5"
		printf '%s 1 %s\n' "$3" "$4"
	} | tee "$1"
}
