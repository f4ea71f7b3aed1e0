#!/usr/bin/env bash
# Measures crmsync worker fleets: 200 simulated accounts (FLEET_BENCH_ACCOUNTS) at 200 ms
# latency, each limited to 3 requests/s, synced once by 1, 2 and 4 worker processes
# (FLEET_BENCH_WORKERS="1 2 4") with their default concurrency, queue and replicas in
# PostgreSQL. Prints accounts per minute and worker CPU per account. Takes several minutes.
# PostgreSQL: CRMSYNC_TEST_POSTGRES, else a local server (scripts/ensure-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CRMSYNC_TEST_POSTGRES:-}" ]; then
	eval "$(scripts/ensure-postgres.sh)"
fi
CRMSYNC_FLEET_BENCH=1 CRMSYNC_REQUIRE_POSTGRES=1 go test -count=1 -timeout 60m -run '^TestFleetBench$' -v ./cmd/crmsync 2>&1 |
	grep -E '^(\||workers=)' || { echo "fleet bench failed; rerun: CRMSYNC_FLEET_BENCH=1 go test -run TestFleetBench -v ./cmd/crmsync" >&2; exit 1; }
