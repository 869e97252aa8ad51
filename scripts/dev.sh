#!/usr/bin/env bash
# Starts the API locally: builds the worker, applies migrations to the local
# D1 in .state/, starts the FAL emulator and `wrangler dev` on loopback,
# creates a demo client and prints its API key. Ctrl-C stops everything.
#
#   PORT=8787 FAL_EMULATOR_PORT=8788 scripts/dev.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT="${PORT:-8787}"
FAL_EMULATOR_PORT="${FAL_EMULATOR_PORT:-8788}"
STATE="$ROOT/.state"
BASE="http://127.0.0.1:$PORT"
EMULATOR="http://127.0.0.1:$FAL_EMULATOR_PORT"

SKIP_BROWSER=1 bash scripts/setup.sh
bash scripts/build.sh
cargo build -q -p fal-emulator

# Local secrets, generated once and never committed (.dev.vars is ignored).
if [ ! -f .dev.vars ]; then
  {
    echo "FAL_KEY=emulator-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "ADMIN_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "WEBHOOK_SIGNING_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  } > .dev.vars
  chmod 600 .dev.vars
fi
# Added after the first .dev.vars files were made: appended when missing.
if ! grep -q '^SIGNING_KEYS=' .dev.vars; then
  echo "SIGNING_KEYS=dev1:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> .dev.vars
fi
FAL_KEY=$(sed -n 's/^FAL_KEY=//p' .dev.vars)
ADMIN_PASSWORD=$(sed -n 's/^ADMIN_PASSWORD=//p' .dev.vars)

mkdir -p "$STATE"
npx wrangler d1 migrations apply DB --local --persist-to "$STATE" > "$STATE/migrations.log" 2>&1 \
  || { cat "$STATE/migrations.log"; exit 1; }

pids=()
cleanup() { for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

set -m # background jobs get their own process groups, so cleanup stops their children too
target/debug/fal-emulator --port "$FAL_EMULATOR_PORT" --api-key "$FAL_KEY" > "$STATE/fal-emulator.log" 2>&1 &
pids+=($!)
SKIP_WORKER_BUILD=1 npx wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to "$STATE" \
  --show-interactive-dev-session=false \
  --var "FAL_BASE_URL:$EMULATOR" --var "FAL_QUEUE_URL:$EMULATOR/queue" \
  --var "FAL_JWKS_URL:$EMULATOR/.well-known/jwks.json" \
  --var ALLOW_LOOPBACK_IMAGE_URLS:true --var "PUBLIC_BASE_URL:$BASE" \
  > "$STATE/wrangler.log" 2>&1 &
pids+=($!)
set +m

for _ in $(seq 1 150); do
  curl -fs "$BASE/health" > /dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "$BASE/health" > /dev/null || { echo "wrangler dev did not start; see $STATE/wrangler.log"; tail -n 30 "$STATE/wrangler.log"; exit 1; }

# The demo client: reuse the saved key while it still works, else create one.
KEY=$(cat "$STATE/demo-api-key" 2>/dev/null || true)
if [ -z "$KEY" ] || [ "$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$BASE/api/generations")" != 200 ]; then
  COOKIE=$(curl -fs -D - -o /dev/null -H 'content-type: application/json' \
    -d "{\"password\":\"$ADMIN_PASSWORD\"}" "$BASE/admin/login" | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\);.*/\1/p')
  KEY=$(curl -fs -H "cookie: $COOKIE" -H 'content-type: application/json' \
    -d '{"name":"Demo Shop","email":"dev@demo-shop.example","allowed_origins":["http://localhost:5173"]}' \
    "$BASE/admin/clients" | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')
  echo "$KEY" > "$STATE/demo-api-key"
  chmod 600 "$STATE/demo-api-key"
fi

cat <<EOT

  Try-on API      $BASE            (logs: .state/wrangler.log)
  Admin           $BASE/admin      password: $ADMIN_PASSWORD   (from .dev.vars)
  FAL emulator    $EMULATOR        (logs: .state/fal-emulator.log)
  Demo API key    $KEY

  curl -s $BASE/api/images/generate -H "x-api-key: $KEY" -H 'content-type: application/json' \\
    -d '{"model":"fal-virtual-try-on","person_image_url":"$EMULATOR/samples/person.png","garment_image_urls":["$EMULATOR/samples/garment.png"]}'

  Ctrl-C stops everything; state stays in .state/ for next time.
EOT
wait
