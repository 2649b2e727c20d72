#!/bin/bash
# A tour of crossrun on a fresh Debian machine, as root: a native container,
# an arm64 program through the host's qemu handler, the same program through
# a private binfmt_misc in the container's user namespace (host handler
# switched off meanwhile), and the diagnosis when nothing can run it.
# Everything it changes on the host's binfmt_misc is put back on exit.
#
#   sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (it runs containers and manages binfmt_misc)" >&2
	exit 1
fi

heading() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
note() { printf '    # %s\n' "$*"; }

heading "Dependencies (busybox-static, qemu-user-static, jq, Go modules)"
# shellcheck source=scripts/deps.sh
. scripts/deps.sh jq

binfmt=/proc/sys/fs/binfmt_misc
work=$(mktemp -d /tmp/crossrun-demo.XXXXXX)
state=$work/state
installed=()  # handlers this demo registered, removed on exit
disabled=()   # host entries this demo disabled, enabled again on exit

reenable() {
	local e
	for e in ${disabled[@]+"${disabled[@]}"}; do
		[ -e "$binfmt/$e" ] && echo 1 >"$binfmt/$e"
	done
	disabled=()
}

cleanup() {
	local id
	for id in demo-native demo-host demo-private demo-none; do
		./crossrun --root "$state" delete --force "$id" >/dev/null 2>&1 || true
	done
	reenable
	if [ ${#installed[@]} -gt 0 ]; then
		./crossrun binfmt uninstall "${installed[@]}" || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

cr() { ./crossrun --root "$state" "$@"; }

# run_logged LOG ARGS... runs crossrun with --debug, its log in LOG (shown on failure).
run_logged() {
	local log=$1
	shift
	if ! cr --debug "$@" 2>"$log"; then
		cat "$log" >&2
		return 1
	fi
}

# aarch64_entries prints the enabled host entries that serve aarch64.
aarch64_entries() {
	./crossrun binfmt ls | awk 'NR > 1 && NF == 0 { exit } $2 == "aarch64" && $5 == "true" { print $1 }'
}

# make_bundle DIR ARGS... creates a bundle with a busybox rootfs running ARGS.
make_bundle() {
	local dir=$1 bb applet args
	shift
	mkdir -p "$dir/rootfs"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc}
	bb=$(command -v busybox || echo /bin/busybox)
	cp "$bb" "$dir/rootfs/bin/busybox"
	for applet in $("$bb" --list-full); do
		[ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$dir/rootfs/$applet"
	done
	./crossrun spec --bundle "$dir"
	args=$(printf '%s\n' "$@" | jq -R . | jq -s -c .)
	jq --argjson args "$args" '.process.terminal = false | .process.args = $args' \
		<"$dir/config.json" >"$dir/config.json.new"
	mv "$dir/config.json.new" "$dir/config.json"
}

# show_route LOG prints the exec route init chose, from a --debug log.
show_route() {
	sed -n 's/.*msg="exec route for \\"\([^\\]*\)\\": \([^"]*\)".*/    route for \1: \2/p' "$1"
}

heading "Build crossrun"
make build
./crossrun --version | head -1
note "host: $(uname -m), kernel $(uname -r)"

heading "A native container: sh -c 'echo hello from \$(uname -m)'"
# shellcheck disable=SC2016 # expanded by the container's shell
make_bundle "$work/native" sh -c 'echo hello from $(uname -m)'
run_logged "$work/native.log" run --bundle "$work/native" demo-native
show_route "$work/native.log"

heading "An arm64 program (GOARCH=arm64 go build) through the host's qemu handler"
make_bundle "$work/arm64" /hello
CGO_ENABLED=0 GOARCH=arm64 go build -o "$work/arm64/rootfs/hello" ./integration/testdata/hello
note "$(file -b "$work/arm64/rootfs/hello" | cut -d, -f1-2)"
if [ -z "$(aarch64_entries)" ]; then
	note "no aarch64 handler on the host: crossrun binfmt install aarch64 (removed again on exit)"
	./crossrun binfmt install aarch64
	installed+=(aarch64)
fi
./crossrun binfmt ls | awk '/^(NAME|PLATFORM) / || $2 == "aarch64"'
run_logged "$work/host.log" run --bundle "$work/arm64" demo-host
show_route "$work/host.log"

heading "The same program with the host handler switched off, in a user namespace"
for e in $(aarch64_entries); do
	echo 0 >"$binfmt/$e"
	disabled+=("$e")
	note "disabled host entry $e for now"
done
cp -a "$work/arm64" "$work/userns"
jq '.linux.namespaces += [{"type": "user"}]
	| .linux.uidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]
	| .linux.gidMappings = [{"containerID": 0, "hostID": 100000, "size": 65536}]' \
	<"$work/userns/config.json" >"$work/userns/config.json.new"
mv "$work/userns/config.json.new" "$work/userns/config.json"
chown -R 100000:100000 "$work/userns/rootfs"
chmod 755 "$work" "$work/userns"
before=$(grep -r . "$binfmt" 2>/dev/null | sort || true)
run_logged "$work/private.log" run --bundle "$work/userns" demo-private
show_route "$work/private.log"
if [ "$before" = "$(grep -r . "$binfmt" 2>/dev/null | sort || true)" ]; then
	note "the host's binfmt_misc is unchanged: qemu was registered in the container's own instance"
else
	echo "demo: the host's binfmt_misc changed" >&2
	exit 1
fi

heading "No handler and no user namespace: the diagnosis (crossrun create fails)"
if cr run --bundle "$work/arm64" demo-none 2>"$work/none.log"; then
	echo "demo: expected the container to fail" >&2
	exit 1
fi
sed 's/^/    /' "$work/none.log"
echo

heading "Restoring the host's binfmt_misc"
reenable
if [ ${#installed[@]} -gt 0 ]; then
	./crossrun binfmt uninstall "${installed[@]}"
	note "removed the handlers this demo installed: ${installed[*]}"
	installed=()
fi
./crossrun binfmt ls | awk '/^(NAME|PLATFORM) / || $2 == "aarch64"'

heading "Done"
