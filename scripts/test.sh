#!/bin/bash
# Runs all of crossrun's tests: unit tests, a short run of each fuzz target,
# the end-to-end integration tests (root) and the OCI runtime-tools
# validation suite. Installs what it needs.
# Logs go to test-logs/; the last line is the count of passed and failed
# tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

logs=$PWD/test-logs
rm -rf "$logs"
mkdir -p "$logs"

echo "== build"
make build
go vet ./...

# Host handlers for qemu-user (a fresh boot may have binfmt_misc mounted
# after qemu-user-static was installed, with nothing registered).
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
	./crossrun binfmt install all
fi

status=0
echo "== unit tests"
go test -count=1 -v $(go list ./... | grep -v /integration) >"$logs/unit.log" 2>&1 || status=1
grep -E '^(ok|FAIL|---)' "$logs/unit.log" | grep -v -- '--- PASS' || true

echo "== fuzz smoke (each target a few seconds; make fuzz runs them long)"
FUZZ_LOGS=$logs/fuzz bash scripts/fuzz.sh smoke >"$logs/fuzz.log" 2>&1 || status=1
cat "$logs/fuzz.log"

echo "== integration tests"
# One package at a time: the foreign-arch tests switch host binfmt handlers
# off and on, which the containerd and CRI arm64 cases would see.
CROSSRUN_BINARY=$PWD/crossrun go test -p 1 -count=1 -v -timeout 60m ./integration/... >"$logs/integration.log" 2>&1 || status=1
grep -E '^(ok|FAIL|--- FAIL|--- SKIP)' "$logs/integration.log" || true

echo "== OCI runtime-tools validation"
RUNTIME=$PWD/crossrun SUMMARY=$logs/conformance-summary.txt \
	EXPECT=$PWD/integration/conformance/expected-pass.txt \
	bash integration/conformance/run.sh >"$logs/conformance.log" 2>&1 || status=1
tail -n 5 "$logs/conformance.log" || true

passed=$(cat "$logs/unit.log" "$logs/integration.log" | grep -cE '^\s*--- PASS' || true)
failed=$(cat "$logs/unit.log" "$logs/integration.log" | grep -cE '^\s*--- FAIL' || true)
skipped=$(cat "$logs/unit.log" "$logs/integration.log" | grep -cE '^\s*--- SKIP' || true)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "a test stage failed without a failing Go test; see $logs" >&2
	failed=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
