# Sourced by the other scripts: pinned tool versions and the environment that
# keeps worker-build and wrangler off the internet.
# The wasm-bindgen CLI must be exactly the wasm-bindgen version in Cargo.lock.
WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130
# The OpenAPI-driven API fuzzer the end-to-end contract test runs (PyPI).
SCHEMATHESIS_VERSION=4.32.5

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG_PATH="$ROOT/target/wrangler-logs"
export CI_DISABLE_UPDATE_CHECK=1
