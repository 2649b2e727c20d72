#!/bin/bash
# Installs what crossrun's demo and tests need on a Debian machine, as root.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(busybox-static qemu-user-static runc crun file make gcc libc6-dev musl-tools containerd podman containernetworking-plugins "$@")

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

# binfmt_misc must be mounted before qemu-user-static registers its handlers.
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=$PATH:/usr/local/go/bin
	else
		echo "deps: Go is not installed; install Go 1.24 or newer" >&2
		exit 1
	fi
fi
go mod download
