#!/usr/bin/env bash
# The benchmark: builds the worker (release) and the tools, then runs
# tools/bench, which starts the worker under Miniflare (inspector off, no
# wrangler dev proxy) with the FAL emulator at zero latency, seeds 1,000
# clients, measures every endpoint (16 connections, 10 s, twice), grows the
# data to 100,000 clients and 1,000,000 generations, and measures again.
# Prints tables; JSON goes to target/bench/. `scripts/bench.sh --quick` for a smoke run;
# `scripts/bench.sh memory` measures peak wasm memory for the largest requests (README "Memory");
# `scripts/bench.sh soak [--seconds N]` runs mixed traffic for a while;
# `scripts/bench.sh costs [--requests N]` counts the billable operations per
# request and prices them (README "What a request costs").
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SKIP_BROWSER=1 bash scripts/setup.sh
bash scripts/build.sh
# The smallest workers-rs worker, a reference for what the Rust entry costs (tools/minimal-worker).
(cd tools/minimal-worker && worker-build --release > /dev/null)
cargo build -q --release -p fal-emulator -p bench
exec target/release/bench "$@"
