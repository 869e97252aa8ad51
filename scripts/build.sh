#!/usr/bin/env bash
# Builds the worker to build/ (wasm + JS shim) without touching the internet.
# wrangler runs this as its build command; SKIP_WORKER_BUILD=1 lets scripts
# that already built once start many wrangler instances without rebuilding.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
if [ "${SKIP_WORKER_BUILD:-}" = "1" ] && [ -f build/index.js ]; then
  exit 0
fi
worker-build --release
