#!/usr/bin/env bash
# Measures tap-crmsync (Singer messages, counted and discarded) against crmsync sync into
# SQLite on the same simulated account, served by `crmsync bench --serve-simulator` in a process
# of its own. Usage: scripts/tap-bench.sh SOURCE [bench size flags], e.g.
#   scripts/tap-bench.sh close --leads 250000 --activities 750000
#   scripts/tap-bench.sh copper --people 250000 --companies 250000 --activities 500000
# Needs GNU time (/usr/bin/time) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$1; shift
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" ./cmd/crmsync ./cmd/tap-crmsync
mkfifo /tmp/tb.in.$$ 2>/dev/null || true
exec 3<> /tmp/tb.in.$$
# stderr to a file too: a server holding the caller's pipe open would keep a pipeline waiting
"$bin/crmsync" bench --serve-simulator --source "$src" "$@" <&3 > /tmp/tb.url.$$ 2> /tmp/tb.srv.$$ &
spid=$!
for i in $(seq 1 600); do [ -s /tmp/tb.url.$$ ] && break; sleep 0.5; done
url=$(head -1 /tmp/tb.url.$$)
key=api_demo.sandboxkey
echo "{\"source\":\"$src\",\"api_key\":\"$key\",\"user_email\":\"demo@crmsync.example\",\"start_date\":\"2020-01-01\",\"base_url\":\"$url\",\"requests_per_second\":-1}" > /tmp/tb.cfg.$$
$bin/tap-crmsync --config /tmp/tb.cfg.$$ --discover > /tmp/tb.cat.$$
python3 - /tmp/tb.cat.$$ <<'PY'
import json,sys
c=json.load(open(sys.argv[1]))
for s in c["streams"]:
    for m in s["metadata"]:
        if m["breadcrumb"]==[]: m["metadata"]["selected"]=True
json.dump(c,open(sys.argv[1],"w"))
PY
/usr/bin/time -f "tap: %e s wall, %U+%S s CPU, %M KB" $bin/tap-crmsync --config /tmp/tb.cfg.$$ --catalog /tmp/tb.cat.$$ 2>/tmp/tb.err.$$ | wc -l | sed 's/^/tap lines: /'
tail -1 /tmp/tb.err.$$
rm -f "$bin"/tb.db*
export CLOSE_API_KEY=$key COPPER_API_KEY=$key COPPER_USER_EMAIL=demo@crmsync.example
/usr/bin/time -f "sync: %e s wall, %U+%S s CPU, %M KB" $bin/crmsync sync --source "$src" --base-url "$url" --start-date 2020-01-01 --dest sqlite:$bin/tb.db --requests-per-second -1 2>&1 | grep -E "→|sync:"
exec 3>&-
kill $spid 2>/dev/null || true
rm -f /tmp/tb.*.$$
