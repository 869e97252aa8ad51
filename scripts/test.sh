#!/usr/bin/env bash
# The whole test suite: unit tests on the host, the worker built to wasm, a
# bundling check, and the end-to-end tests against wrangler dev + the FAL
# emulator (each run starts its own wrangler instances on free ports with
# fresh state, and stops them). Installs whatever is missing first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup.sh

echo "== module graph (one-way imports, bindings and settings in one place each)"
python3 scripts/module-graph.py

echo "== worker build"
bash scripts/build.sh

echo "== wrangler deploy --dry-run (bundles without network)"
SKIP_WORKER_BUILD=1 npx wrangler deploy --dry-run --outdir target/dry-run > target/dry-run.log 2>&1 || { cat target/dry-run.log; exit 1; }
tail -n 3 target/dry-run.log

echo "== unit and end-to-end tests"
rm -rf target/e2e-state
SKIP_WORKER_BUILD=1 cargo test --workspace -- "$@"
