#!/usr/bin/env bash
# Builds PostgreSQL 18.6 from Debian's source tarball once, into
# ${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}/postgresql-18.6/ (bin, lib,
# share, include), and copies it into <stack dir>/bin/postgresql-18.6, a
# directory the postgres user can reach (the cache under a home directory may
# not be). Bookworm has no PostgreSQL 18 package and trixie's needs a newer
# glibc, so the major upgrade 15 -> 18 is tested against this build.
#
# The tarball (postgresql-18_18.6.orig.tar.bz2, 22.6 MB) comes from Debian's
# archive with apt's own downloader (apt-helper download-file), checked
# against the SHA-256 pinned below; no other host is contacted.
# configure takes the flags of Debian's postgresql-15 (pg_config --configure)
# that the nodes' data and extensions need: openssl (pgcrypto, sslinfo,
# TLS), icu (collations), lz4 and zstd (TOAST and WAL compression a 15
# cluster may already use), libxml and libxslt (xml type, xml2), e2fs uuid
# (uuid-ossp), the system time zone data and port 5432; not the PL languages,
# LLVM, PAM, GSSAPI, LDAP, NLS, systemd nor SELinux, which the nodes do not
# use. The libraries are found through RUNPATH $ORIGIN/../lib, and PostgreSQL
# finds its share directory relative to its binaries, so the tree runs from
# wherever it is copied. `make world-bin` (the server, the client tools,
# pg_upgrade and contrib, no documentation) takes about 15 minutes on two
# busy cores; it runs under nice -n 19.
# The build dependencies (bison, flex, the -dev packages) are installed by
# scripts/install-deps.sh. scripts/stack.sh env offers the result as
# PGBROKER_POSTGRES_VERSIONS' third entry, 18.6=<stack dir>/bin/postgresql-18.6/bin.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${PGBROKER_STACK_DIR:-$repo/.stack}
cache_dir=${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}
version=18.6
tarball=postgresql-18_$version.orig.tar.bz2
sha256=555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f
prefix=$cache_dir/postgresql-$version
dir=$stack_dir/bin/postgresql-$version

# debian_archive prints the archive apt already uses for the main Debian
# suite (the first index target whose URI ends in /debian): the same mirror
# as every other package, none named here.
debian_archive() {
	# shellcheck disable=SC2016 # $(REPO_URI) is apt's placeholder, not the shell's
	apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null | grep -m1 -E '/debian/?$'
}

built() {
	[[ -x $1/bin/postgres && -x $1/bin/pg_upgrade && -f $1/lib/pgcrypto.so && -f $1/lib/pg_stat_statements.so ]] &&
		"$1/bin/postgres" --version 2>/dev/null | grep -qx "postgres (PostgreSQL) $version"
}

if built "$prefix"; then
	echo "postgresql: $version built in $prefix"
else
	mkdir -p "$cache_dir"
	if [[ ! -f $cache_dir/$tarball ]] || ! echo "$sha256  $cache_dir/$tarball" | sha256sum -c --quiet - 2>/dev/null; then
		echo "postgresql: downloading $tarball into $cache_dir"
		if ! archive=$(debian_archive); then
			echo "postgresql: no Debian archive in apt's sources (apt-get indextargets); run apt-get update" >&2
			exit 1
		fi
		url=${archive%/}/pool/main/p/postgresql-18/$tarball
		rm -f "$cache_dir/$tarball.part"
		# _apt cannot write into a private home: download as the caller.
		if ! /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "$url" "$cache_dir/$tarball.part" "SHA256:$sha256"; then
			echo "postgresql: downloading $url failed (or its SHA-256 is not $sha256)" >&2
			exit 1
		fi
		mv "$cache_dir/$tarball.part" "$cache_dir/$tarball"
	fi
	work=$(mktemp -d "$cache_dir/postgresql-$version-build.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	echo "postgresql: building $version in $work (about 15 minutes; log $work/build.log)"
	start=$SECONDS
	tar -xjf "$cache_dir/$tarball" -C "$work"
	src=$work/postgresql-$version
	rm -rf "$prefix"
	if ! (
		cd "$src" &&
			nice -n 19 ./configure --prefix="$prefix" \
				--with-openssl --with-icu --with-lz4 --with-zstd --with-libxml --with-libxslt \
				--with-uuid=e2fs --with-system-tzdata=/usr/share/zoneinfo --with-pgport=5432 &&
			# The generated headers (utils/errcodes.h, ...) first: `make -j
			# world-bin` may compile src/common before src/backend made them
			# (a fresh build failed so: "utils/errcodes.h: No such file").
			nice -n 19 make -C src/backend generated-headers &&
			nice -n 19 make -j"$(nproc)" world-bin rpathdir="\$\$ORIGIN/../lib" &&
			nice -n 19 make install-world-bin rpathdir="\$\$ORIGIN/../lib"
	) >"$work/build.log" 2>&1; then
		tail -40 "$work/build.log" >&2
		echo "postgresql: building $version failed (the last lines of the log above)" >&2
		rm -rf "$prefix"
		exit 1
	fi
	if ! built "$prefix"; then
		echo "postgresql: $prefix/bin/postgres does not report $version after the build" >&2
		exit 1
	fi
	echo "postgresql: built $version into $prefix in $((SECONDS - start)) s"
fi

if built "$dir" && [[ ! $prefix/bin/postgres -nt $dir/bin/postgres ]]; then
	echo "postgresql: $version copied in $dir"
else
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	cp -a "$prefix" "$dir"
	chmod -R a+rX "$dir"
	echo "postgresql: copied $("$dir/bin/postgres" --version) into $dir"
fi
