#!/usr/bin/env bash
# ensure-postgres.sh — make a PostgreSQL server available to crmsync's tests.
#
#   eval "$(scripts/ensure-postgres.sh)"        # prints export lines on stdout
#   go test ./...
#   scripts/ensure-postgres.sh stop "$CRMSYNC_TEST_POSTGRES_DIR"   # only set if one was started
#
# If a server answers at the configured address (CRMSYNC_TEST_POSTGRES, else the PG* variables,
# else 127.0.0.1:5432), it prints
#   export CRMSYNC_TEST_POSTGRES='<its URL>'
# Otherwise it installs PostgreSQL from Debian packages when no server binaries exist, starts a
# throwaway cluster (initdb in a temporary directory, trust auth, 127.0.0.1, a free port; run as
# the postgres user when root, since initdb refuses root) and prints
#   export CRMSYNC_TEST_POSTGRES='postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable'
#   export CRMSYNC_TEST_POSTGRES_DIR='/tmp/crmsync-pg.XXXXXX'
# The throwaway cluster runs with fsync off: it is for tests, not for data or benchmarks.
# Messages go to stderr, so stdout can be eval'ed.
set -euo pipefail

MARKER=.crmsync-ensure-postgres

log() { echo "ensure-postgres: $*" >&2; }
die() { log "$*"; exit 1; }

# as_pg runs a command as the postgres user when we are root (initdb and postgres refuse root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# bindir prints the newest PostgreSQL server bin directory, or nothing.
bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if [ -x "$d/initdb" ]; then echo "$d"; return; fi
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
	d=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")
	if [ -x "$d/initdb" ]; then echo "$d"; fi
}

# tcp_open HOST PORT: does something listen there?
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

stop() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: $0 stop DIR (the CRMSYNC_TEST_POSTGRES_DIR printed at start)"
	[ -f "$dir/$MARKER" ] || die "$dir was not created by $0; refusing to touch it"
	local bin
	bin=$(bindir)
	[ -n "$bin" ] || die "no PostgreSQL binaries found to stop the cluster in $dir"
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || log "pg_ctl stop failed; removing $dir anyway"
	fi
	rm -rf -- "$dir"
	log "stopped and removed $dir"
}

running_url() {
	# The configured address: CRMSYNC_TEST_POSTGRES, else the PG* variables, else the default.
	local url=${CRMSYNC_TEST_POSTGRES:-}
	local host=${PGHOST:-127.0.0.1} port=${PGPORT:-5432}
	if [ -z "$url" ]; then
		url="postgres://${PGUSER:-postgres}@${host}:${port}/${PGDATABASE:-postgres}?sslmode=disable"
	fi
	local isready b
	isready=$(command -v pg_isready || true)
	if [ -z "$isready" ]; then
		b=$(bindir)
		[ -z "$b" ] || isready="$b/pg_isready"
	fi
	if [ -n "$isready" ] && [ -x "$isready" ]; then
		"$isready" -q -t 3 -d "$url" >/dev/null 2>&1 && { echo "$url"; return 0; }
		return 1
	fi
	# No client tools: a TCP check on the default/PG* address is the best we can do.
	if [ -z "${CRMSYNC_TEST_POSTGRES:-}" ] && [ "${host#/}" = "$host" ] && tcp_open "$host" "$port"; then
		echo "$url"
		return 0
	fi
	return 1
}

install_postgres() {
	log "no PostgreSQL server binaries found: installing the Debian package"
	local sudo=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install PostgreSQL (apt-get install postgresql) and rerun"
		sudo="sudo -n"
	fi
	$sudo apt-get update >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
}

free_port() {
	local port i
	for i in $(seq 1 100); do
		port=$((40000 + RANDOM % 20000))
		tcp_open 127.0.0.1 "$port" || { echo "$port"; return 0; }
	done
	die "no free port found"
}

start() {
	if url=$(running_url); then
		log "a server answers at $(printf '%s' "$url" | sed -E 's#(://[^:/@]*):[^@]*@#\1@#')"
		printf "export CRMSYNC_TEST_POSTGRES='%s'\n" "$url"
		return 0
	fi
	local bin
	bin=$(bindir)
	if [ -z "$bin" ]; then
		install_postgres
		bin=$(bindir)
		[ -n "$bin" ] || die "PostgreSQL was installed but initdb is nowhere to be found"
	fi
	if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
		useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
	fi

	local dir port
	dir=$(mktemp -d "${TMPDIR:-/tmp}/crmsync-pg.XXXXXX")
	touch "$dir/$MARKER"
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
	port=$(free_port)
	log "starting a throwaway cluster in $dir on 127.0.0.1:$port ($bin)"
	as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
		as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; rm -rf -- "$dir"; die "initdb failed"; }
	# Sockets go into the cluster's own directory: /var/run/postgresql may not be writable.
	if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >&2; then
		cat "$dir/server.log" >&2 || true
		rm -rf -- "$dir"
		die "the cluster did not start"
	fi
	printf "export CRMSYNC_TEST_POSTGRES='postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable'\n" "$port"
	printf "export CRMSYNC_TEST_POSTGRES_DIR='%s'\n" "$dir"
}

case "${1:-start}" in
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 [start] | $0 stop DIR" ;;
esac
