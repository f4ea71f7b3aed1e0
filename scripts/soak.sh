#!/usr/bin/env bash
# Opt-in long soak (not part of the test command): repeats the fault matrix, the kill -9
# resume test and the fuzzers for as long as asked. Usage: scripts/soak.sh [ROUNDS] [FUZZTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
fuzztime=${2:-2000000x}  # an execution count: duration budgets hit golang/go#75804 on Go 1.26
if [ -z "${CRMSYNC_TEST_POSTGRES:-}" ]; then
  eval "$(scripts/ensure-postgres.sh)"
  trap '[ -n "${CRMSYNC_TEST_POSTGRES_DIR:-}" ] && scripts/ensure-postgres.sh stop "$CRMSYNC_TEST_POSTGRES_DIR"' EXIT
fi
export CRMSYNC_REQUIRE_POSTGRES=1
go test -count="$rounds" -timeout 0 -run 'TestFaultMatrix|TestHostileData' ./internal/faulttest
go test -count="$rounds" -timeout 0 -run 'TestKill9AndResume|TestSigintStopsCleanly' ./cmd/crmsync
for target in record:FuzzDecodePage record:FuzzDecodeArray config:FuzzParseStartDate config:FuzzParseConfig; do
  go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "$fuzztime" "./internal/${target%%:*}"
done
