#!/usr/bin/env bash
# OCI runtime conformance harness: runs the opencontainers/runtime-tools
# v0.9.0 validation suite against an OCI runtime with a runc-compatible CLI.
#
# Usage (as root):
#   RUNTIME=/usr/sbin/runc integration/conformance/run.sh
#   RUNTIME=$PWD/crossrun SUMMARY=out/summary.txt \
#       EXPECT=integration/conformance/expected-pass.txt \
#       integration/conformance/run.sh
#   RUNTIME=$PWD/crossrun integration/conformance/run.sh state kill hooks_stdin
#
# Positional arguments (or TESTS="a b c") pick a subset of validation tests by
# name (the directory name under runtime-tools' validation/, e.g. "state").
#
# Environment:
#   RUNTIME             runtime binary (path or name in PATH). Required.
#   CONFORMANCE_WORKDIR work/cache dir (default /var/tmp/crossrun-conformance):
#                       build module, binaries, rootfs, per-run state.
#   SUMMARY             summary file (default $CONFORMANCE_WORKDIR/results/<runtime>/summary.txt)
#   LOGDIR              per-test TAP logs (default: directory of SUMMARY, /tap)
#   EXPECT              file listing tests that must pass (one name a line,
#                       '#' comments). A listed test that fails makes the exit
#                       status 1. Without EXPECT, failures do not fail the run.
#   TEST_TIMEOUT        seconds per validation test (default 120)
#   JOBS                tests run in parallel (default 2; cgroup tests always
#                       run one after another because they share a cgroup path)
#   ISOLATE_ROOT        1 (default): the runtime is called through a wrapper
#                       adding `--root <workdir>/state/<run>`, so leftovers
#                       can be cleaned up without touching other containers.
#                       The runtime must accept the global --root flag.
#                       0: call RUNTIME exactly as given.
#   SKIP_APT            1: never call apt-get (fail if a tool is missing).
#
# Exit status: 0 when the harness ran (whatever the conformance results),
# 1 when a test named in EXPECT did not pass, 2 when the harness itself broke.
#
# Needs: root, Go, the Go module proxy (first run only), Debian's apt (first
# run only, for busybox-static), tar, timeout, unshare.
#
# README.md beside this script explains the summary format, how the tests
# drive the runtime, and the known quirks of the suite; results/ holds the
# baselines for runc and crun.
set -euo pipefail

RUNTIME_TOOLS_VERSION=v0.9.0
RUNTIME_TOOLS_MODULE=github.com/opencontainers/runtime-tools
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "conformance: $*" >&2; exit 2; }
log() { echo "conformance: $*" >&2; }

[[ -n "${RUNTIME:-}" ]] || die "set RUNTIME to the runtime binary, e.g. RUNTIME=/usr/sbin/runc $0"
RUNTIME_BIN=$(command -v -- "$RUNTIME") || die "RUNTIME=$RUNTIME not found"
RUNTIME_BIN=$(readlink -f -- "$RUNTIME_BIN")
[[ -x "$RUNTIME_BIN" ]] || die "$RUNTIME_BIN is not executable"
[[ $(id -u) -eq 0 ]] || die "must run as root"

WORKDIR=${CONFORMANCE_WORKDIR:-/var/tmp/crossrun-conformance}
RUNTIME_NAME=$(basename -- "$RUNTIME_BIN")
SUMMARY=${SUMMARY:-$WORKDIR/results/$RUNTIME_NAME/summary.txt}
LOGDIR=${LOGDIR:-$(dirname -- "$SUMMARY")/tap}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
JOBS=${JOBS:-2}
ISOLATE_ROOT=${ISOLATE_ROOT:-1}
EXPECT=${EXPECT:-}
[[ -z "$EXPECT" || -r "$EXPECT" ]] || die "EXPECT=$EXPECT is not readable"
[[ "$TEST_TIMEOUT" =~ ^[0-9]+$ && "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "TEST_TIMEOUT and JOBS must be numbers"

mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
SRC=$WORKDIR/src          # throwaway build module
BIN=$WORKDIR/bin          # runtimetest, rootfs-amd64.tar.gz, validation/*.t
mkdir -p "$SRC" "$BIN/validation" "$(dirname -- "$SUMMARY")" "$LOGDIR"
SUMMARY=$(readlink -f -- "$SUMMARY")
LOGDIR=$(cd "$LOGDIR" && pwd)

# ---------------------------------------------------------------- 1. tools
ensure_tools() {
	local missing=()
	[[ -x /bin/busybox ]] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
	command -v tar >/dev/null || missing+=(tar)
	command -v timeout >/dev/null || missing+=(coreutils)
	command -v unshare >/dev/null || missing+=(util-linux)
	if ((${#missing[@]})); then
		[[ "${SKIP_APT:-0}" != 1 ]] || die "missing packages: ${missing[*]} (SKIP_APT=1)"
		command -v apt-get >/dev/null || die "missing packages: ${missing[*]} and no apt-get"
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
	command -v go >/dev/null || die "go not found in PATH"
	# busybox must be static: hooks run the rootfs' /bin/sh on the host too.
	if ldd /bin/busybox >/dev/null 2>&1; then
		die "/bin/busybox is dynamically linked; install busybox-static"
	fi
}

# ---------------------------------------------------------------- 2. build
build_suite() {
	local stamp want
	want=$( {
		cat "$HERE/runtime-tools.go.mod" "$HERE/runtime-tools.go.sum"
		go version
		echo "build-v2"
	} | sha256sum | cut -d' ' -f1)
	stamp=$BIN/.build-stamp
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$BIN/runtimetest" ]] &&
		compgen -G "$BIN/validation/*.t" >/dev/null; then
		log "suite binaries up to date in $BIN"
		return
	fi
	log "building runtime-tools $RUNTIME_TOOLS_VERSION into $BIN"
	cp "$HERE/runtime-tools.go.mod" "$SRC/go.mod"
	cp "$HERE/runtime-tools.go.sum" "$SRC/go.sum"
	cat >"$SRC/tools.go" <<-'EOF'
		//go:build tools

		// Imports the packages run.sh builds, so that `go mod tidy` keeps them.
		package tools

		import (
			_ "github.com/opencontainers/runtime-tools/cmd/runtimetest"
			_ "github.com/opencontainers/runtime-tools/validation/util"
		)
	EOF
	(
		cd "$SRC"
		export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local
		go mod download "$RUNTIME_TOOLS_MODULE"
		# Since Go 1.19 every Go program raises its own soft RLIMIT_NOFILE at
		# start (syscall/rlimit.go), so runtimetest would never see the soft
		# limit the runtime set and process_rlimits would fail for every
		# runtime. Build runtimetest with that init disabled (a build overlay
		# of the one standard-library file; nothing else changes).
		local goroot overlay=() rl
		goroot=$(go env GOROOT)
		rl=$goroot/src/syscall/rlimit.go
		if [[ -f "$rl" ]] && grep -q '^func init() {$' "$rl"; then
			sed 's/^func init() {$/func init() {\n\treturn/' "$rl" >"$SRC/syscall_rlimit.go"
			printf '{"Replace":{"%s":"%s"}}\n' "$rl" "$SRC/syscall_rlimit.go" >"$SRC/overlay.json"
			overlay=(-overlay "$SRC/overlay.json")
		else
			log "warning: $rl not as expected; process_rlimits' NOFILE check may fail"
		fi
		# runtimetest runs inside the container's busybox rootfs: no libc there.
		CGO_ENABLED=0 go build -trimpath "${overlay[@]}" -tags 'netgo osusergo' \
			-ldflags '-extldflags -static' -o "$BIN/runtimetest.new" \
			"$RUNTIME_TOOLS_MODULE/cmd/runtimetest"
		local pkgs
		pkgs=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' \
			"$RUNTIME_TOOLS_MODULE/validation/...")
		[[ -n "$pkgs" ]] || die "no validation packages found"
		rm -rf "$BIN/validation.new" && mkdir -p "$BIN/validation.new"
		# shellcheck disable=SC2086
		go build -trimpath -o "$BIN/validation.new/" $pkgs
		for f in "$BIN"/validation.new/*; do mv "$f" "$f.t"; done
	)
	if ldd "$BIN/runtimetest.new" >/dev/null 2>&1; then
		die "runtimetest is not static"
	fi
	mv "$BIN/runtimetest.new" "$BIN/runtimetest"
	rm -rf "$BIN/validation" && mv "$BIN/validation.new" "$BIN/validation"
	echo "$want" >"$stamp"
}

# Rootfs: static busybox and its applet links (the tests use sh, true, false,
# sleep, cat, touch, ...), a minimal /etc/passwd and /etc/group, and the
# mount points /dev /proc /sys.
build_rootfs() {
	local want stamp dir a
	want=$( {
		sha256sum /bin/busybox
		echo "rootfs-v1"
	} | sha256sum | cut -d' ' -f1)
	stamp=$BIN/.rootfs-stamp
	if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -s "$BIN/rootfs-amd64.tar.gz" ]]; then
		return
	fi
	log "building rootfs-amd64.tar.gz from /bin/busybox"
	dir=$WORKDIR/rootfs.build
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,dev,proc,sys,etc,tmp,root}
	chmod 1777 "$dir/tmp"
	cp /bin/busybox "$dir/bin/busybox"
	for a in $(/bin/busybox --list); do
		[[ "$a" == busybox || -e "$dir/bin/$a" ]] || ln -s busybox "$dir/bin/$a"
	done
	[[ -e "$dir/bin/sh" ]] || ln -s busybox "$dir/bin/sh"
	cat >"$dir/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:2:2:daemon:/:/bin/false
		uucp:x:10:14:uucp:/:/bin/false
		nobody:x:65534:65534:nobody:/:/bin/false
	EOF
	cat >"$dir/etc/group" <<-'EOF'
		root:x:0:
		daemon:x:2:
		tty:x:5:
		wheel:x:10:
		uucp:x:14:
		nogroup:x:65534:
	EOF
	tar -C "$dir" --numeric-owner --owner=0 --group=0 -czf "$BIN/rootfs-amd64.tar.gz.new" .
	mv "$BIN/rootfs-amd64.tar.gz.new" "$BIN/rootfs-amd64.tar.gz"
	rm -rf "$dir"
	echo "$want" >"$stamp"
}

# ---------------------------------------------------------------- 3. run
RUN_ID=$(date +%Y%m%d-%H%M%S)-$$
STATE_ROOT=$WORKDIR/state/$RUN_ID
TMPROOT=$WORKDIR/tmp/$RUN_ID

# The runtime as the tests will call it.
setup_runtime() {
	if [[ "$ISOLATE_ROOT" == 1 ]]; then
		mkdir -p "$STATE_ROOT" "$WORKDIR/wrap"
		TEST_RUNTIME=$WORKDIR/wrap/$RUNTIME_NAME-$RUN_ID
		printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$RUNTIME_BIN" "$STATE_ROOT" >"$TEST_RUNTIME"
		chmod 755 "$TEST_RUNTIME"
	else
		TEST_RUNTIME=$RUNTIME_BIN
	fi
}

# Kill and delete containers a timed-out test left behind (isolated root only).
cleanup_runtime() {
	[[ "$ISOLATE_ROOT" == 1 ]] || return 0
	local id ids
	ids=$("$RUNTIME_BIN" --root "$STATE_ROOT" list -q 2>/dev/null || true)
	for id in $ids; do
		log "removing leftover container $id"
		"$RUNTIME_BIN" --root "$STATE_ROOT" kill "$id" KILL >/dev/null 2>&1 || true
		"$RUNTIME_BIN" --root "$STATE_ROOT" delete -f "$id" >/dev/null 2>&1 || true
	done
	rm -f "$TEST_RUNTIME"
	remove_tree "$STATE_ROOT"
}

# The cgroup tests use the fixed paths /cgrouptest and testdir/cgrouptest and
# a runtime may leave them behind when a test fails; stale ones (with their
# limits) would leak into the next run. rmdir removes only empty, unused ones.
remove_test_cgroups() {
	local d sub
	for d in /sys/fs/cgroup /sys/fs/cgroup/*/; do
		[[ -d "$d" ]] || continue
		for sub in testdir/cgrouptest/container testdir/cgrouptest testdir cgrouptest; do
			if [[ -d "$d/$sub" ]]; then rmdir "$d/$sub" 2>/dev/null || true; fi
		done
	done
}

# remove_tree DIR: unmount whatever is still mounted below DIR, then delete it
# without crossing into other filesystems. linux_ns_itype runs a container
# without a mount namespace, so the runtime's /proc, /dev and /sys mounts for
# it land in the host's namespace and stay there.
remove_tree() {
	local dir=$1 m
	[[ -e "$dir" ]] || return 0
	# mountinfo field 5 is the mount point; deepest first.
	while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	rm -rf --one-file-system "$dir" 2>/dev/null || true
}

# run_one NAME: runs validation/NAME.t, writes $LOGDIR/NAME.{tap,stderr,rc,secs}
run_one() {
	local name=$1 rc start end tmp
	tmp=$TMPROOT/$name
	mkdir -p "$tmp"
	start=$(date +%s.%N)
	set +e
	(
		cd "$BIN"
		RUNTIME=$TEST_RUNTIME TMPDIR=$tmp exec timeout -k 10 "$TEST_TIMEOUT" \
			"./validation/$name.t"
	) </dev/null >"$LOGDIR/$name.tap" 2>"$LOGDIR/$name.stderr"
	rc=$?
	set -e
	end=$(date +%s.%N)
	echo "$rc" >"$LOGDIR/$name.rc"
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' >"$LOGDIR/$name.secs"
	remove_tree "$tmp"
	echo "conformance: $(printf '%-40s' "$name") rc=$rc $(cat "$LOGDIR/$name.secs")s" >&2
}

# Tests that use the fixed cgroup path /cgrouptest (or inspect it) cannot run
# beside each other.
is_serial() {
	case $1 in
	linux_cgroups_* | delete_resources | delete_only_create_resources) return 0 ;;
	*) return 1 ;;
	esac
}

run_all() {
	local -a serial=() parallel=()
	local n
	for n in "${SELECTED[@]}"; do
		if is_serial "$n"; then serial+=("$n"); else parallel+=("$n"); fi
	done
	rm -f "$LOGDIR"/*.tap "$LOGDIR"/*.stderr "$LOGDIR"/*.rc "$LOGDIR"/*.secs
	if ((JOBS == 1)); then
		for n in "${SELECTED[@]}"; do run_one "$n"; done
		return
	fi
	local lane=
	if ((${#serial[@]})); then
		( for n in "${serial[@]}"; do run_one "$n"; done ) &
		lane=$!
	fi
	# While the serial lane runs it takes one of the JOBS slots.
	local -a running
	local p busy
	for n in "${parallel[@]}"; do
		while :; do
			mapfile -t running < <(jobs -rp)
			busy=0
			for p in "${running[@]}"; do
				if [[ "$p" != "$lane" ]]; then busy=$((busy + 1)); fi
			done
			if [[ -n "$lane" ]] && kill -0 "$lane" 2>/dev/null && ((JOBS > 1)); then
				busy=$((busy + 1))
			fi
			((busy >= JOBS)) || break
			wait -n || true
		done
		run_one "$n" &
	done
	wait || true
}

# ---------------------------------------------------------------- 4. report
# parse_tap NAME -> "pass fail skip todo plan errdiag"
#   plan: sum of all plan lines (some tests print several TAP streams, each
#   with its own "1..N"), -1 when there is none.
#   errdiag: 1 when a YAML diagnostic carries an "error" key. The lifecycle
#   tests (hooks, prestart, poststart, ...) report failure only this way: no
#   assertion at all, "1..0", and an error diagnostic, with exit status 0.
parse_tap() {
	awk '
	BEGIN { pass = 0; fail = 0; skip = 0; todo = 0; plan = -1; err = 0; yaml = 0 }
	/^ok( |$)/ {
		if (tolower($0) ~ /#[ \t]*skip/) skip++
		else if (tolower($0) ~ /#[ \t]*todo/) todo++
		else pass++
		next
	}
	/^not ok( |$)/ {
		if (tolower($0) ~ /#[ \t]*(skip|todo)/) todo++
		else fail++
		next
	}
	/^1\.\.[0-9]+/ { n = $0; sub(/^1\.\./, "", n); plan = (plan < 0 ? 0 : plan) + n; next }
	/^  ---/ { yaml = 1; next }
	/^  \.\.\./ { yaml = 0; next }
	yaml && /^    "error":/ { err = 1 }
	END { printf "%d %d %d %d %d %d\n", pass, fail, skip, todo, plan, err }
	' "$LOGDIR/$1.tap"
}

# first_error NAME: the first line of the first "error" diagnostic.
first_error() {
	sed -n 's/^    "error": "\(.*\)",\{0,1\}$/\1/p' "$LOGDIR/$1.tap" | head -n1 |
		sed 's/\\n.*//' | cut -c1-110
}

write_summary() {
	local n rc secs pass fail skip todo plan result reason
	local files=0 files_pass=0 files_fail=0 t_pass=0 t_fail=0 t_skip=0 t_todo=0
	local version
	version=$("$RUNTIME_BIN" --version 2>/dev/null | head -n1 || true)
	FAILED_FILES=()
	{
		echo "# runtime: $RUNTIME_BIN (${version:-version unknown})"
		echo "# suite: $RUNTIME_TOOLS_MODULE $RUNTIME_TOOLS_VERSION"
		echo "# host: $(uname -sr) $(uname -m); timeout ${TEST_TIMEOUT}s; jobs $JOBS"
		echo "# result: pass = every assertion ok (or skipped), plan matches, no error diagnostic, exit 0"
		printf '%-34s %-7s %5s %5s %5s %5s %4s %6s  %s\n' \
			'# file' result pass fail skip todo exit secs note
		for n in "${SELECTED[@]}"; do
			rc=$(cat "$LOGDIR/$n.rc" 2>/dev/null || echo 255)
			secs=$(cat "$LOGDIR/$n.secs" 2>/dev/null || echo 0)
			read -r pass fail skip todo plan errdiag < <(parse_tap "$n")
			reason=
			if [[ "$rc" == 124 || "$rc" == 137 ]]; then
				result=timeout reason="killed after ${TEST_TIMEOUT}s"
			elif ((fail > 0)); then
				result=fail
				reason="first: $(grep -m1 '^not ok' "$LOGDIR/$n.tap" | sed 's/^not ok [0-9]* *-* *//' | cut -c1-100)"
			elif [[ "$rc" != 0 ]]; then
				result=fail reason="exit $rc"
			elif ((plan < 0)) && [[ ! -s "$LOGDIR/$n.tap" ]]; then
				# process_*_fail: the test passes when create fails, and
				# then prints nothing and exits 0.
				result=pass reason="no TAP output (negative test), exit 0"
			elif ((plan < 0)); then
				result=fail reason="no TAP plan"
			elif ((plan != pass + fail + skip + todo)); then
				result=fail reason="plan 1..$plan, saw $((pass + fail + skip + todo))"
			elif ((pass + skip + todo == 0 && errdiag)); then
				result=fail reason="error: $(first_error "$n")"
			else
				result=pass
			fi
			if [[ "$result" != pass && "$result" != timeout && ! "$reason" =~ ^error: ]] && ((fail == 0)) &&
				[[ -s "$LOGDIR/$n.stderr" ]]; then
				reason="${reason:+$reason; }$(grep -v '^[[:space:]]*$' "$LOGDIR/$n.stderr" | head -n1 | cut -c1-100)"
			fi
			printf '%-34s %-7s %5d %5d %5d %5d %4s %6s  %s\n' \
				"$n" "$result" "$pass" "$fail" "$skip" "$todo" "$rc" "$secs" "$reason"
			files=$((files + 1))
			if [[ "$result" == pass ]]; then
				files_pass=$((files_pass + 1))
			else
				files_fail=$((files_fail + 1))
				FAILED_FILES+=("$n")
			fi
			t_pass=$((t_pass + pass)) t_fail=$((t_fail + fail))
			t_skip=$((t_skip + skip)) t_todo=$((t_todo + todo))
		done
		TOTAL_LINE="TOTAL files=$files passed=$files_pass failed=$files_fail asserts: ok=$t_pass not_ok=$t_fail skip=$t_skip todo=$t_todo wall=${WALL}s"
		echo "$TOTAL_LINE"
	} >"$SUMMARY"
}

check_expect() {
	[[ -n "$EXPECT" ]] || return 0
	local line name bad=0 f
	while IFS= read -r line || [[ -n "$line" ]]; do
		name=${line%%#*}
		name=$(echo "$name" | tr -d '[:space:]')
		[[ -n "$name" ]] || continue
		name=${name#validation/}
		name=${name%.t}
		name=${name%/*.go}
		if [[ ! -x "$BIN/validation/$name.t" ]]; then
			log "EXPECT names unknown test '$name'"
			bad=1
			continue
		fi
		if [[ ! -f "$LOGDIR/$name.rc" ]]; then
			continue # not selected in this run
		fi
		for f in "${FAILED_FILES[@]}"; do
			if [[ "$f" == "$name" ]]; then
				log "REGRESSION: $name is expected to pass but failed (see $LOGDIR/$name.tap)"
				bad=1
			fi
		done
	done <"$EXPECT"
	return $bad
}

# ---------------------------------------------------------------- main
ensure_tools
build_suite
build_rootfs

mapfile -t ALL < <(cd "$BIN/validation" && ls -- *.t | sed 's/\.t$//' | sort)
if (($#)); then
	SELECTED=("$@")
elif [[ -n "${TESTS:-}" ]]; then
	read -r -a SELECTED <<<"$TESTS"
else
	SELECTED=("${ALL[@]}")
fi
for n in "${SELECTED[@]}"; do
	[[ -x "$BIN/validation/$n.t" ]] || die "unknown validation test '$n' (known: ${ALL[*]})"
done

setup_runtime
trap 'cleanup_runtime; remove_tree "$TMPROOT"' EXIT
log "running ${#SELECTED[@]} tests against $RUNTIME_BIN (logs in $LOGDIR)"
T0=$(date +%s)
remove_test_cgroups
run_all
WALL=$(($(date +%s) - T0))
cleanup_runtime
remove_test_cgroups
trap - EXIT
remove_tree "$TMPROOT"
rmdir "$WORKDIR/tmp" "$WORKDIR/state" "$WORKDIR/wrap" 2>/dev/null || true

write_summary
cat "$SUMMARY"
echo "summary: $SUMMARY"
if ! check_expect; then
	exit 1
fi
exit 0
