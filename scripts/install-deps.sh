#!/usr/bin/env bash
# Installs what the local stack needs and is missing: the Debian packages
# (apt-get update only when one is missing), the pinned Nomad binary, and
# versitygw (the S3 server the S3 backup storage is tested against),
# PostgreSQL 15.20 unpacked beside Debian's 15.18 (the minor upgrade is tested
# between the two), PostgreSQL 18.6 built from Debian's source once (the major
# upgrade's target; bison, flex and the -dev packages are its build
# dependencies); chromium drives the dashboard in the browser tests.
# Safe to run again; needs Go, and root or sudo for apt-get.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packages=(postgresql-15 postgresql-contrib haproxy pgbackrest patroni etcd-server rclone jq chromium
	bison flex gcc make pkg-config libssl-dev libicu-dev liblz4-dev libzstd-dev libxml2-dev libxslt1-dev
	uuid-dev libreadline-dev zlib1g-dev)

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	else
		sudo "$@"
	fi
}

missing=()
for package in "${packages[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null) != installed ]]; then
		missing+=("$package")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "apt: ${packages[*]} already installed"
else
	echo "apt: installing ${missing[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

"$scripts/build-nomad.sh"
"$scripts/build-versitygw.sh"
"$scripts/build-postgres.sh"
"$scripts/build-postgres18.sh"
