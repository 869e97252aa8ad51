#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

installed() { # name version
  cargo install --list | grep -q "^$1 v$2:"
}
if ! installed worker-build "$WORKER_BUILD_VERSION"; then
  cargo install worker-build --version "$WORKER_BUILD_VERSION"
fi
if ! installed wasm-bindgen-cli "$WASM_BINDGEN_VERSION"; then
  # --locked fails for this version (a locked dependency was yanked).
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
locked=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ "$locked" != "$WASM_BINDGEN_VERSION" ]; then
  echo "Cargo.lock has wasm-bindgen $locked but scripts/env.sh pins $WASM_BINDGEN_VERSION" >&2
  exit 1
fi

# Schemathesis, pinned, in a venv of our own under target/ (not the
# system's Python packages); tests/e2e/contract.rs runs it.
if ! target/venv-fuzz/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv target/venv-fuzz
  target/venv-fuzz/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Headless Chromium for the dashboard's browser test (Debian's package; a
# test tool's own browser download cannot reach the internet here).
if [ "${SKIP_BROWSER:-}" != "1" ] && [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends chromium; }
fi

if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
