#!/bin/bash
# Runs crossrun's Go fuzz targets, one after the other.
#
#   scripts/fuzz.sh smoke             each target for a few seconds (CI)
#   scripts/fuzz.sh long [DURATION]   each target for DURATION (default 10m)
#   scripts/fuzz.sh list              the targets
#
# FUZZ_TARGETS="binfmt:FuzzELF ..." limits the run to some targets;
# FUZZ_PARALLEL sets the worker processes per target (default 1);
# FUZZ_LOGS sets where the full logs go (default: a temporary directory).
#
# One line per target: result, time, executions, coverage bits and new
# corpus entries. On a failure the line says where go test wrote the failing
# input (PKG/testdata/fuzz/TARGET/ID; commit it as a regression case once
# fixed) and the log's failure message follows. The exit status is non-zero
# when a target failed. The fuzzing corpus that grows along the way stays in
# $(go env GOCACHE)/fuzz, outside the tree.
set -uo pipefail
cd "$(dirname "$0")/.."

all_targets="spec:FuzzConfig
seccomp:FuzzCompile
seccomp:FuzzCompileJSON
seccomp:FuzzKernelABIProfile
binfmt:FuzzELF
binfmt:FuzzParseEntry
binfmt:FuzzRegisterString
internal/specjson:FuzzDecodeSpec
internal/specjson:FuzzDecodeFragment"

usage() {
	echo "usage: $0 smoke | long [DURATION] | list" >&2
	exit 2
}

mode=${1:-}
case $mode in
smoke)
	duration=10s
	minimize=1s
	;;
long)
	duration=${2:-10m}
	minimize=5s
	;;
list)
	echo "$all_targets" | tr ':' ' '
	exit 0
	;;
*) usage ;;
esac

targets=${FUZZ_TARGETS:-$all_targets}
parallel=${FUZZ_PARALLEL:-1}
logs=${FUZZ_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/crossrun-fuzz.XXXXXX")}
mkdir -p "$logs"

# seconds converts a go duration (90s, 10m, 1h30m) to seconds.
seconds() {
	local d=$1 total=0 n
	while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
		n=${BASH_REMATCH[1]}
		case ${BASH_REMATCH[2]} in
		h) total=$((total + n * 3600)) ;;
		m) total=$((total + n * 60)) ;;
		s) total=$((total + n)) ;;
		esac
		d=${BASH_REMATCH[3]}
	done
	if [ -n "$d" ] || [ "$total" -eq 0 ]; then
		echo "fuzz.sh: bad duration $1 (want e.g. 30s, 10m, 1h)" >&2
		exit 2
	fi
	echo "$total"
}
limit=$(($(seconds "$duration") + 120)) # build time and a last minimization

echo "fuzz: $mode, $duration per target, logs in $logs"
status=0
for t in $targets; do
	pkg=${t%%:*}
	name=${t##*:}
	log=$logs/${pkg//\//-}-$name.log
	start=$(date +%s)
	GODEBUG=fuzzdebug=1 timeout --signal=INT --kill-after=30 "$limit" \
		go test -run '^$' -fuzz "^$name\$" -fuzztime "$duration" \
		-fuzzminimizetime "$minimize" -parallel "$parallel" "./$pkg/" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))

	# The coordinator's last progress line and coverage figures.
	progress=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$progress")
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([^,]+),.*/\1/p' <<<"$progress")
	newin=$(sed -nE 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/+\1 (\2 in all)/p' <<<"$progress")
	bits=$(grep -oE 'total bits: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
	[ -n "$bits" ] || bits=$(grep -oE 'initial coverage bits: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+$')
	secs=$(sed -nE 's/^([0-9]+)m([0-9.]+)s$/\1 \2/p; s/^([0-9.]+)s$/0 \1/p' <<<"$elapsed" | awk '{printf "%d", $1*60+$2}')
	rate=""
	if [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ]; then
		rate=" ($((execs / secs))/s)"
	fi
	summary="${took}s, ${execs:-0} execs${rate}, ${bits:-?} coverage bits, corpus ${newin:-+0}"

	if [ $rc -eq 0 ] && grep -q '^PASS' "$log"; then
		printf 'PASS  %-17s %-22s %s\n' "$pkg" "$name" "$summary"
		continue
	fi
	input=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -n 1)
	# Go before 1.27 can end a run at the -fuzztime deadline with a bare
	# "context deadline exceeded" and no failing input (a race in the
	# fuzzing coordinator, go.dev/issue/75804): that is not a finding.
	if [ $rc -eq 1 ] && [ -z "$input" ] && [ "$(grep -cvE '^fuzz: |DEBUG |^(--- FAIL: |FAIL|exit status 1|ok )|^\s*$' "$log")" = 1 ] &&
		grep -qE '^\s+context deadline exceeded$' "$log"; then
		printf 'PASS  %-17s %-22s %s; stopped by the go fuzztime race (go.dev/issue/75804), no failing input\n' "$pkg" "$name" "$summary"
		continue
	fi
	status=1
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		printf 'HANG  %-17s %-22s did not finish within %ss; log %s\n' "$pkg" "$name" "$limit" "$log"
	elif [ -n "$input" ]; then
		printf 'FAIL  %-17s %-22s %s; reproducer %s/%s (go test -run %s/%s ./%s/)\n' \
			"$pkg" "$name" "$summary" "$pkg" "$input" "$name" "${input##*/}" "$pkg"
	else
		printf 'FAIL  %-17s %-22s %s; no reproducer written, log %s\n' "$pkg" "$name" "$summary" "$log"
	fi
	# The failure message, without the progress lines.
	grep -vE '^fuzz: (elapsed|minimizing)| DEBUG ' "$log" | grep -vE '^\s*$' | head -n 25 | sed 's/^/      /'
done
exit $status
