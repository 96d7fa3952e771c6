#!/usr/bin/env bash
# Builds versitygw (an S3-compatible server: the backup storage S3 backend
# is tested against it on loopback) from the Go module proxy, once per
# version, into ${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}/versitygw-<version>,
# and links it to <stack dir>/bin/versitygw. The first build takes about 2 minutes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${PGBROKER_STACK_DIR:-$repo/.stack}
cache_dir=${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}
version=v1.8.0
binary=$cache_dir/versitygw-$version

if [[ -x $binary ]]; then
	echo "versitygw: $version cached at $binary"
else
	echo "versitygw: building $version into $binary (about 2 minutes the first time)"
	mkdir -p "$cache_dir"
	gobin=$(mktemp -d "$cache_dir/versitygw-build.XXXXXX")
	trap 'rm -rf "$gobin"' EXIT
	GOBIN=$gobin go install "github.com/versity/versitygw/cmd/versitygw@$version"
	mv -f "$gobin/versitygw" "$binary"
fi

mkdir -p "$stack_dir/bin"
ln -sfn "$binary" "$stack_dir/bin/versitygw"
echo "versitygw: linked $stack_dir/bin/versitygw -> $binary"
