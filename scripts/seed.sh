#!/usr/bin/env bash
# Fills the local D1 used by scripts/dev.sh (.state/) with data to look at:
# 1,000 clients and 1,000,000 generations over 400 days by default, with
# their rollups. Stop scripts/dev.sh first (the database file must be free).
#   scripts/seed.sh [CLIENTS] [GENERATIONS] [DAYS]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SKIP_BROWSER=1 bash scripts/setup.sh
mkdir -p .state
npx wrangler d1 migrations apply DB --local --persist-to .state > /dev/null
cargo build -q --release -p bench
target/release/bench seed .state "${1:-1000}" "${2:-1000000}" "${3:-400}"
