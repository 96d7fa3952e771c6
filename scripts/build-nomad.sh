#!/usr/bin/env bash
# Builds the Nomad version pinned in tools/nomad/go.mod from the Go module proxy,
# once per version, into ${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}/nomad-<version>,
# and links it to <stack dir>/bin/nomad. The first build takes minutes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_dir=${PGBROKER_STACK_DIR:-$repo/.stack}
cache_dir=${PGBROKER_CACHE_DIR:-$HOME/.cache/pgbroker}
tools_dir=$repo/tools/nomad

# The version is the one required in go.mod, in either require form.
version=$(awk '
	$1 == "require" && $2 == "github.com/hashicorp/nomad" { print $3; exit }
	$1 == "github.com/hashicorp/nomad" && $2 ~ /^v/ { print $2; exit }
' "$tools_dir/go.mod")
if [[ -z $version ]]; then
	echo "build-nomad: no github.com/hashicorp/nomad requirement in $tools_dir/go.mod" >&2
	exit 1
fi
binary=$cache_dir/nomad-$version

if [[ -x $binary ]]; then
	echo "nomad: $version cached at $binary"
else
	echo "nomad: building $version into $binary (first build takes several minutes)"
	mkdir -p "$cache_dir"
	# Build to a temporary name so an interrupted build never looks finished.
	partial=$(mktemp "$binary.partial.XXXXXX")
	trap 'rm -f "$partial"' EXIT
	# -e: a test-only import deep in Nomad's dependencies does not resolve; the build does not need it.
	(cd "$tools_dir" && go mod tidy -e && go build -o "$partial" github.com/hashicorp/nomad)
	chmod 0755 "$partial"
	mv -f "$partial" "$binary"
fi

mkdir -p "$stack_dir/bin"
ln -sfn "$binary" "$stack_dir/bin/nomad"
echo "nomad: linked $stack_dir/bin/nomad -> $binary"
