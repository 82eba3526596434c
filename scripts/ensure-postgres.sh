#!/bin/sh
# Makes sure PostgreSQL's server binaries (initdb, postgres) are installed:
# the store tests start a throwaway cluster from them (server/internal/pgtest)
# when DATABASE_URL is unset. `make test` runs this first.
#
# Idempotent, and a quick no-op when the binaries are there. Otherwise it
# installs Debian's `postgresql` package (as root, or through sudo). The
# package creates and starts a system cluster, which Millrace does not use:
# this stops it and sets it to start manually.
set -eu

have_server() {
	command -v initdb >/dev/null 2>&1 && return 0
	# Debian and Ubuntu keep the server binaries off PATH.
	for dir in /usr/lib/postgresql/*/bin; do
		[ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
	done
	return 1
}

if have_server; then
	exit 0
fi
if [ -n "${DATABASE_URL:-}" ]; then
	echo "ensure-postgres: no PostgreSQL server binaries, but DATABASE_URL is set: tests use that server"
	exit 0
fi

fail() {
	echo "ensure-postgres: $*" >&2
	echo "ensure-postgres: install PostgreSQL's server (initdb and postgres) yourself, or set DATABASE_URL to a server where the tests may create schemas" >&2
	exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "no PostgreSQL server binaries, and no apt-get to install them with"
if [ "$(id -u)" -eq 0 ]; then
	as_root=""
elif command -v sudo >/dev/null 2>&1; then
	as_root="sudo"
else
	fail "no PostgreSQL server binaries; installing them needs root or sudo"
fi

echo "ensure-postgres: installing PostgreSQL server binaries (apt-get install postgresql)..."
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
	fail "apt-get update failed"
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql ||
	fail "apt-get install postgresql failed"

# Every cluster now present came with the package we just installed (there
# were no server binaries before): stop it, and keep it from starting at
# boot. The tests start their own clusters and never use it.
if command -v pg_lsclusters >/dev/null 2>&1; then
	pg_lsclusters --no-header 2>/dev/null | while read -r version name _; do
		[ -n "$version" ] && [ -n "$name" ] || continue
		$as_root pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
		conf="/etc/postgresql/$version/$name/start.conf"
		if [ -f "$conf" ]; then
			echo manual | $as_root tee "$conf" >/dev/null
		fi
		echo "ensure-postgres: stopped the system cluster $version/$name that the package created (start.conf: manual)"
	done
fi

have_server || fail "apt-get installed postgresql, yet initdb is still missing"
echo "ensure-postgres: done"
