#!/usr/bin/env bash
# Fetches PostgreSQL 15.20 (Debian bookworm-security's postgresql-15 and
# postgresql-client-15 .debs, apt-get download) once per version into
# ${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}/postgresql-<debian version>/,
# and unpacks them (dpkg-deb -x) into <stack dir>/bin/postgresql-<debian version>:
# a directory of its own that the postgres user can reach (the cache under a
# home directory may not be). Nothing is installed system-wide; Debian's 15.18
# stays where it is. The binaries run from
# <stack dir>/bin/postgresql-<debian version>/usr/lib/postgresql/15/bin:
# PostgreSQL finds its share and lib directories relative to the binary.
# scripts/stack.sh env offers it as PGBROKER_POSTGRES_VERSIONS' second entry.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${PGBROKER_STACK_DIR:-$repo/.stack}
cache_dir=${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}
debian_version=15.20-0+deb12u1
debs=$cache_dir/postgresql-$debian_version
dir=$stack_dir/bin/postgresql-$debian_version
bin=$dir/usr/lib/postgresql/15/bin

if compgen -G "$debs/postgresql-15_*.deb" >/dev/null && compgen -G "$debs/postgresql-client-15_*.deb" >/dev/null; then
	echo "postgresql: $debian_version .debs cached in $debs"
else
	echo "postgresql: downloading $debian_version into $debs"
	mkdir -p "$cache_dir"
	work=$(mktemp -d "$cache_dir/postgresql-download.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	# _apt cannot write into a private home: download as the caller.
	chmod 0755 "$work"
	if ! (cd "$work" && apt-get download -q -o APT::Sandbox::User=root \
		"postgresql-15=$debian_version" "postgresql-client-15=$debian_version"); then
		echo "postgresql: apt-get download postgresql-15=$debian_version failed: is bookworm-security in the apt sources (apt-cache policy postgresql-15)?" >&2
		exit 1
	fi
	rm -rf "$debs"
	mv "$work" "$debs"
	trap - EXIT
fi

if [[ -x $bin/postgres ]] && "$bin/postgres" --version >/dev/null 2>&1; then
	echo "postgresql: $debian_version unpacked in $dir"
else
	rm -rf "$dir"
	mkdir -p "$dir"
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
	done
	chmod -R a+rX "$dir"
	echo "postgresql: unpacked $("$bin/postgres" --version) into $dir"
fi
