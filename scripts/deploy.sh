#!/usr/bin/env bash
# Deploys the worker to a Cloudflare environment, in ten steps: preflight,
# build, tests without a browser, a D1 restore point, remote D1 migrations,
# secrets, a new version, a gradual rollout watched on /health, a final
# check, and the rollback commands. The runbook is docs/operations.md.
#
#   scripts/deploy.sh [--env staging|production] [--dry-run] [--skip-tests]
#
# --dry-run prints every command for the environment (default staging) and
# runs nothing that installs, builds or touches the network; it needs only
# bash (and node, if present, to resolve the configuration).
#
# Environment:
#   CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID   required (see docs/operations.md for the token's permissions)
#   FAL_KEY ADMIN_PASSWORD WEBHOOK_SIGNING_KEY SIGNING_KEYS METRICS_TOKEN
#                       secrets to upload with the new version; any not given keeps its deployed value
#   DEPLOY_SECRETS_FILE the same secrets from a file (.env or JSON); the environment wins
#   CANARY_PERCENT      share of traffic for the new version first (default 10)
#   CANARY_SECONDS      how long the canary is watched (default: 60 staging, 300 production)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

usage() { echo "usage: scripts/deploy.sh [--env staging|production] [--dry-run] [--skip-tests]"; exit "${1:-0}"; }

ENV_NAME=staging
DRY_RUN=0
SKIP_TESTS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --env) [ $# -ge 2 ] || usage 2; ENV_NAME="$2"; shift 2 ;;
    --env=*) ENV_NAME="${1#--env=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --skip-tests) SKIP_TESTS=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 ;;
  esac
done
case "$ENV_NAME" in
  staging) CANARY_SECONDS="${CANARY_SECONDS:-60}" ;;
  production) CANARY_SECONDS="${CANARY_SECONDS:-300}" ;;
  *) echo "--env must be staging or production, not '$ENV_NAME'" >&2; exit 2 ;;
esac
CANARY_PERCENT="${CANARY_PERCENT:-10}"
SECRET_NAMES=(FAL_KEY ADMIN_PASSWORD WEBHOOK_SIGNING_KEY SIGNING_KEYS METRICS_TOKEN)
STEPS=10
STEP=0

# ── output helpers ──────────────────────────────────────────────────────────
step() { STEP=$((STEP + 1)); printf '\n== [%d/%d] %s\n' "$STEP" "$STEPS" "$*"; }
note() { printf '   %s\n' "$*"; }
warn() { printf '   WARNING: %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
show() { # prints a command the way it is run
  local out="   \$"
  for arg in "$@"; do
    case "$arg" in
      *[[:space:]\"\'\$]*) out+=" '${arg//\'/\'\\\'\'}'" ;;
      *) out+=" $arg" ;;
    esac
  done
  printf '%s\n' "$out"
}
run() { # runs a command, or only prints it in a dry run; stdin is closed so nothing prompts
  show "$@"
  [ "$DRY_RUN" = 1 ] && return 0
  "$@" < /dev/null
}
run_to() { # run_to FILE cmd…: like run, with stdout into FILE
  local file="$1"; shift
  show "$@"; printf '     > %s\n' "$file"
  [ "$DRY_RUN" = 1 ] && return 0
  "$@" < /dev/null > "$file"
}
wrangler() { run npx wrangler "$@" --env "$ENV_NAME"; }

# ── configuration, resolved by wrangler itself ──────────────────────────────
# Prints KEY=VALUE lines for this environment: names, ids and every value
# that still holds a placeholder (REPLACE_ME, or a host under .example).
resolve_config() {
  node - "$ENV_NAME" <<'EOF'
const { unstable_readConfig } = require("wrangler");
const env = process.argv[2];
const c = unstable_readConfig({ config: "wrangler.toml", env }, { hideWarnings: true });
const out = (k, v) => console.log(`${k}=${v ?? ""}`);
out("WORKER_NAME", c.name);
out("BASE_URL", (c.vars.PUBLIC_BASE_URL || "").replace(/\/+$/, ""));
out("D1_NAME", c.d1_databases[0]?.database_name);
out("D1_ID", c.d1_databases[0]?.database_id);
out("KV_ID", c.kv_namespaces[0]?.id);
out("R2_BUCKETS", c.r2_buckets.map((b) => b.bucket_name).join(" "));
const queues = new Set([...c.queues.producers.map((p) => p.queue), ...c.queues.consumers.flatMap((q) => [q.queue, q.dead_letter_queue].filter(Boolean))]);
out("QUEUES", [...queues].join(" "));
out("DO_TAG", c.migrations.at(-1)?.tag);
out("ROUTES", (c.routes ?? []).map((r) => (typeof r === "string" ? r : r.pattern)).join(" "));
out("ENVIRONMENT_VAR", c.vars.ENVIRONMENT);
const bad = [];
const visit = (path, v) => {
  if (typeof v === "string" && (/REPLACE_ME/.test(v) || /(^|[/.])[a-z0-9-]+\.example(\/|$)/i.test(v))) bad.push(`${path}=${v}`);
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) visit(`${path}.${k}`, x);
};
visit("d1_databases", c.d1_databases);
visit("kv_namespaces", c.kv_namespaces);
visit("routes", c.routes);
visit("vars", c.vars);
out("PLACEHOLDERS", bad.join(" "));
if (c.vars.TEST_CLOCK !== undefined || c.vars.ALLOW_LOOPBACK_IMAGE_URLS !== undefined) out("DEV_ONLY_VARS", "set");
EOF
}

# The same lines without node or wrangler, for a dry run on a bare machine:
# the keys of this environment's tables, read from the file as written.
read_config_by_hand() {
  awk -v env="$ENV_NAME" '
    /^\[/ { inside = ($0 ~ "^\\[\\[?env\\." env "[].]"); migrations = ($0 ~ /^\[\[migrations\]\]/) }
    { line = $0; sub(/[ \t]*#.*$/, "", line) }
    # Durable Object migrations are top-level tables every environment inherits.
    migrations && line ~ /^tag[ \t]*=/ { tag = val(line) }
    !inside { next }
    function val(l) { sub(/^[^=]*=[ \t]*"/, "", l); sub(/".*$/, "", l); return l }
    line ~ /^PUBLIC_BASE_URL[ \t]*=/ { base = val(line) }
    line ~ /^ENVIRONMENT[ \t]*=/ { environment = val(line) }
    line ~ /^database_name[ \t]*=/ { d1name = val(line) }
    line ~ /^database_id[ \t]*=/ { d1id = val(line) }
    line ~ /^id[ \t]*=/ { kvid = val(line) }
    line ~ /^bucket_name[ \t]*=/ { r2 = r2 (r2 ? " " : "") val(line) }
    line ~ /^(queue|dead_letter_queue)[ \t]*=/ { q = val(line); if (!(q in seen)) { seen[q]; queues = queues (queues ? " " : "") q } }
    line ~ /pattern[ \t]*=/ { p = line; sub(/^.*pattern[ \t]*=[ \t]*"/, "", p); sub(/".*$/, "", p); routes = routes (routes ? " " : "") p }
    END {
      printf "WORKER_NAME=tryon-edge-%s\nBASE_URL=%s\nENVIRONMENT_VAR=%s\nD1_NAME=%s\nD1_ID=%s\nKV_ID=%s\n", env, base, environment, d1name, d1id, kvid
      printf "R2_BUCKETS=%s\nQUEUES=%s\nDO_TAG=%s\nROUTES=%s\n", r2, queues, tag, routes
      bad = ""
      if (d1id ~ /REPLACE_ME/) bad = bad " database_id=" d1id
      if (kvid ~ /REPLACE_ME/) bad = bad " kv_namespaces.id=" kvid
      if (routes ~ /\.example/) bad = bad " routes=" routes
      if (base ~ /\.example/) bad = bad " PUBLIC_BASE_URL=" base
      sub(/^ /, "", bad); printf "PLACEHOLDERS=%s\n", bad
    }' wrangler.toml
}

# ── 1. preflight ────────────────────────────────────────────────────────────
step "preflight: tools, configuration, credentials (env $ENV_NAME)"
missing=()
for tool in bash git node npm cargo rustup curl; do
  if command -v "$tool" > /dev/null 2>&1; then note "$tool: ok"; else missing+=("$tool"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$DRY_RUN" = 1 ] && warn "missing tools (a real deploy needs them): ${missing[*]}" || die "missing tools: ${missing[*]}"
fi

WORKER_NAME="" BASE_URL="" D1_NAME="" D1_ID="" KV_ID="" R2_BUCKETS="" QUEUES="" DO_TAG="" ROUTES="" ENVIRONMENT_VAR="" PLACEHOLDERS="" DEV_ONLY_VARS=""
if command -v node > /dev/null 2>&1 && [ -f node_modules/wrangler/package.json ]; then
  while IFS='=' read -r key value; do
    case "$key" in WORKER_NAME|BASE_URL|D1_NAME|D1_ID|KV_ID|R2_BUCKETS|QUEUES|DO_TAG|ROUTES|ENVIRONMENT_VAR|PLACEHOLDERS|DEV_ONLY_VARS) printf -v "$key" '%s' "$value" ;; esac
  done < <(resolve_config)
else
  [ "$DRY_RUN" = 1 ] || die "node_modules/wrangler is missing: install it first (SKIP_BROWSER=1 bash scripts/setup.sh)"
  while IFS='=' read -r key value; do printf -v "$key" '%s' "$value"; done < <(read_config_by_hand)
  note "configuration read from wrangler.toml by hand (wrangler is not installed here)"
fi
note "worker $WORKER_NAME at ${BASE_URL:-?} (routes: ${ROUTES:-none}); ENVIRONMENT=$ENVIRONMENT_VAR"
note "D1 $D1_NAME ($D1_ID), KV $KV_ID, R2 $R2_BUCKETS, queues $QUEUES, Durable Object migrations up to $DO_TAG"
[ "$ENVIRONMENT_VAR" = "$ENV_NAME" ] || [ -z "$ENVIRONMENT_VAR" ] || die "ENVIRONMENT is '$ENVIRONMENT_VAR' in [env.$ENV_NAME.vars]; it must be '$ENV_NAME'"
[ -z "$DEV_ONLY_VARS" ] || die "TEST_CLOCK / ALLOW_LOOPBACK_IMAGE_URLS are set for $ENV_NAME; they belong to local development only"
if [ -n "$PLACEHOLDERS" ]; then
  for p in $PLACEHOLDERS; do
    if [ "$DRY_RUN" = 1 ]; then warn "placeholder still in wrangler.toml: $p"; else printf '   placeholder: %s\n' "$p" >&2; fi
  done
  [ "$DRY_RUN" = 1 ] || die "replace the placeholders in [env.$ENV_NAME] of wrangler.toml first (docs/operations.md, one-time setup)"
fi

if [ "$DRY_RUN" = 1 ]; then
  [ -n "${CLOUDFLARE_API_TOKEN:-}" ] && note "CLOUDFLARE_API_TOKEN: set" || note "CLOUDFLARE_API_TOKEN: not set (a real deploy needs it)"
  [ -n "${CLOUDFLARE_ACCOUNT_ID:-}" ] && note "CLOUDFLARE_ACCOUNT_ID: set" || note "CLOUDFLARE_ACCOUNT_ID: not set (a real deploy needs it)"
else
  [ -n "${CLOUDFLARE_API_TOKEN:-}" ] || die "CLOUDFLARE_API_TOKEN is not set"
  [ -n "${CLOUDFLARE_ACCOUNT_ID:-}" ] || die "CLOUDFLARE_ACCOUNT_ID is not set"
fi
# A malformed SIGNING_KEYS given in the environment is refused here, before
# anything changes (step 6 checks a DEPLOY_SECRETS_FILE's value again).
if [ -n "${SIGNING_KEYS:-}" ]; then
  IFS=',' read -ra signing_keys <<< "$SIGNING_KEYS"
  for k in "${signing_keys[@]}"; do
    k="${k#"${k%%[![:space:]]*}"}"; k="${k%"${k##*[![:space:]]}"}"
    [[ "$k" =~ ^[A-Za-z0-9_-]+:[^[:space:]]{32,}$ ]] \
      || die "SIGNING_KEYS must be comma-separated id:secret pairs, newest first, each secret at least 32 characters"
  done
fi
GIT_SHA=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  [ "$ENV_NAME" = production ] && [ "$DRY_RUN" = 0 ] && die "the work tree has uncommitted changes; production deploys a commit"
  warn "the work tree has uncommitted changes; the version is tagged $GIT_SHA but is not exactly that commit"
fi
DEPLOY_MESSAGE="deploy.sh $ENV_NAME $GIT_SHA${GITHUB_RUN_ID:+ (CI run $GITHUB_RUN_ID)}"

run npx wrangler whoami
# Every resource must exist before anything changes: a missing queue would
# fail the upload after the D1 migrations were already applied.
wrangler d1 info DB
for q in $QUEUES; do wrangler queues info "$q"; done
for b in $R2_BUCKETS; do wrangler r2 bucket info "$b"; done

# Which path the release takes: a version gradually, or a direct deploy when
# the worker is new or its Durable Object migrations are behind (Cloudflare
# rejects versions that change Durable Object classes, error 10211).
MODE=gradual OLD_VERSION="<CURRENT_VERSION_ID>" LIVE_TAG=""
printf '   $ GET https://api.cloudflare.com/client/v4/accounts/$CLOUDFLARE_ACCOUNT_ID/workers/scripts   (node fetch: migration_tag of %s)\n' "$WORKER_NAME"
if [ "$DRY_RUN" = 1 ]; then
  show npx wrangler deployments status --env "$ENV_NAME" --json
  note "dry run: assuming $WORKER_NAME exists at migration tag $DO_TAG with one version at 100%"
  note "  (a new worker, or one whose tag is behind $DO_TAG, takes the direct path: wrangler deploy, no canary)"
else
  LIVE_TAG=$(node - "$CLOUDFLARE_ACCOUNT_ID" "$WORKER_NAME" <<'EOF'
const [account, name] = process.argv.slice(2);
fetch(`https://api.cloudflare.com/client/v4/accounts/${account}/workers/scripts`, {
  headers: { Authorization: `Bearer ${process.env.CLOUDFLARE_API_TOKEN}` },
}).then((r) => r.json()).then((j) => {
  if (!j.success) { console.error(JSON.stringify(j.errors)); process.exit(1); }
  const script = j.result.find((s) => s.id === name);
  console.log(script ? script.migration_tag || "(none)" : "(absent)");
});
EOF
  ) || die "could not list the account's workers (token permission Workers Scripts: Read?)"
  note "live Durable Object migration tag: $LIVE_TAG (wanted: $DO_TAG)"
  if [ "$LIVE_TAG" = "(absent)" ]; then
    MODE=direct OLD_VERSION="(none)"
    note "$WORKER_NAME does not exist yet: first deploy, direct"
  else
    show npx wrangler deployments status --env "$ENV_NAME" --json
    status_json=$(npx wrangler deployments status --env "$ENV_NAME" --json < /dev/null) || die "wrangler deployments status failed"
    read -r versions OLD_VERSION < <(node -e '
      const d = JSON.parse(process.argv[1]);
      const top = [...d.versions].sort((a, b) => b.percentage - a.percentage)[0];
      console.log(d.versions.length, top.version_id);' "$status_json")
    [ "$versions" = 1 ] || die "a gradual deployment is in progress on $WORKER_NAME; finish it (wrangler versions deploy) or roll back first"
    note "live version: $OLD_VERSION (100%)"
    if [ "$LIVE_TAG" != "$DO_TAG" ]; then
      MODE=direct
      note "Durable Object migration pending ($LIVE_TAG → $DO_TAG): direct deploy, no canary, no rollback past it"
    fi
  fi
fi
note "release path: $MODE"

# ── 2. build ────────────────────────────────────────────────────────────────
step "build (wasm target, pinned worker-build and wasm-bindgen-cli, npm ci; no browser)"
run env SKIP_BROWSER=1 bash scripts/setup.sh
run bash scripts/build.sh
# Every wrangler command below reuses this build instead of running it again.
export SKIP_WORKER_BUILD=1

# ── 3. tests ────────────────────────────────────────────────────────────────
step "tests without a browser (the end-to-end suite runs in CI: scripts/test.sh)"
if [ "$SKIP_TESTS" = 1 ]; then
  note "unit tests skipped (--skip-tests)"
else
  run cargo test --workspace --lib --bins
fi
OUT="target/deploy/$ENV_NAME/$(date -u +%Y%m%dT%H%M%SZ)"
[ "$DRY_RUN" = 1 ] || mkdir -p "$OUT"
# Bundles exactly what will be uploaded, with this environment's bindings.
run_to "$OUT/bundle.log" npx wrangler deploy --dry-run --env "$ENV_NAME" --outdir "$OUT/bundle"

# ── 4. D1 restore point ─────────────────────────────────────────────────────
step "D1 restore point (Time Travel bookmark of $D1_NAME before migrating)"
run_to "$OUT/restore-point.json" npx wrangler d1 time-travel info DB --env "$ENV_NAME" --json
BOOKMARK="<BOOKMARK>"
if [ "$DRY_RUN" = 0 ]; then
  BOOKMARK=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).bookmark)' "$OUT/restore-point.json")
  note "bookmark $BOOKMARK saved in $OUT/restore-point.json"
fi

# ── 5. migrations ───────────────────────────────────────────────────────────
step "remote D1 migrations (additive only: the live version keeps running on the new schema)"
wrangler d1 migrations list DB --remote
wrangler d1 migrations apply DB --remote

# ── 6. secrets ──────────────────────────────────────────────────────────────
step "secrets (uploaded with the version, so they change only where it runs)"
SECRETS_ARGS=()
present=()
for name in "${SECRET_NAMES[@]}"; do [ -n "${!name:-}" ] && present+=("$name"); done
[ -n "${DEPLOY_SECRETS_FILE:-}" ] && note "secrets file: $DEPLOY_SECRETS_FILE"
if [ "$DRY_RUN" = 1 ]; then
  note "from the environment: ${present[*]:-none}; not given → the deployed value stays"
  if [ ${#present[@]} -gt 0 ] || [ -n "${DEPLOY_SECRETS_FILE:-}" ]; then SECRETS_ARGS=(--secrets-file "<private temp file>"); fi
else
  SECRETS_DIR=$(mktemp -d)
  trap 'rm -rf "$SECRETS_DIR"' EXIT
  chmod 700 "$SECRETS_DIR"
  given=$(node - "$SECRETS_DIR/secrets.json" "${SECRET_NAMES[*]}" <<'EOF'
const fs = require("fs");
const [target, namesText] = process.argv.slice(2);
const names = namesText.split(" ");
const values = {};
const file = process.env.DEPLOY_SECRETS_FILE;
if (file) {
  const text = fs.readFileSync(file, "utf8");
  let parsed;
  try { parsed = JSON.parse(text); } catch {
    parsed = {};
    for (const line of text.split(/\r?\n/)) {
      const m = line.match(/^\s*(?:export\s+)?([A-Z0-9_]+)\s*=\s*(.*?)\s*$/);
      if (m) parsed[m[1]] = m[2].replace(/^(["'])(.*)\1$/, "$2");
    }
  }
  for (const n of names) if (parsed[n]) values[n] = String(parsed[n]);
}
for (const n of names) if (process.env[n]) values[n] = process.env[n];
const keys = values.SIGNING_KEYS?.split(",") ?? [];
if (keys.some((k) => !/^[A-Za-z0-9_-]+:\S{32,}$/.test(k.trim()))) {
  console.error("SIGNING_KEYS must be comma-separated id:secret pairs, newest first, each secret at least 32 characters");
  process.exit(1);
}
fs.writeFileSync(target, JSON.stringify(values), { mode: 0o600 });
console.log(Object.keys(values).join(" "));
EOF
  ) || die "the secrets could not be read"
  if [ -n "$given" ]; then
    SECRETS_ARGS=(--secrets-file "$SECRETS_DIR/secrets.json")
    note "uploading: $given (values never printed)"
  else
    note "no secrets given: every deployed secret keeps its value"
  fi
fi

# ── 7. upload ───────────────────────────────────────────────────────────────
NEW_VERSION="<NEW_VERSION_ID>"
# wrangler appends one JSON line per command to this file; it names the version.
OUTPUT_FILE="$PWD/$OUT/wrangler-output.ndjson"
version_written_by() { # version_written_by TYPE: the last version id wrangler recorded for TYPE
  [ -f "$OUTPUT_FILE" ] || return 0
  node -e '
    const entries = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(JSON.parse);
    console.log(entries.filter((e) => e.type === process.argv[2]).at(-1)?.version_id ?? "");' "$OUTPUT_FILE" "$1"
}
if [ "$MODE" = gradual ]; then
  step "upload a new version (not yet serving)"
  show export WRANGLER_OUTPUT_FILE_PATH="$OUTPUT_FILE"
  WRANGLER_OUTPUT_FILE_PATH="$OUTPUT_FILE" wrangler versions upload "${SECRETS_ARGS[@]}" --tag "$GIT_SHA" --message "$DEPLOY_MESSAGE"
  if [ "$DRY_RUN" = 0 ]; then
    NEW_VERSION=$(version_written_by version-upload)
    [ -n "$NEW_VERSION" ] || die "wrangler versions upload reported no version id"
    note "new version: $NEW_VERSION"
  else
    note "dry run: on the direct path this step is instead:"
    show npx wrangler deploy "${SECRETS_ARGS[@]}" --tag "$GIT_SHA" --message "$DEPLOY_MESSAGE" --env "$ENV_NAME"
  fi
else
  step "deploy directly (first deploy or Durable Object migration: all traffic at once)"
  show export WRANGLER_OUTPUT_FILE_PATH="$OUTPUT_FILE"
  WRANGLER_OUTPUT_FILE_PATH="$OUTPUT_FILE" wrangler deploy "${SECRETS_ARGS[@]}" --tag "$GIT_SHA" --message "$DEPLOY_MESSAGE"
  if [ "$DRY_RUN" = 0 ]; then
    NEW_VERSION=$(version_written_by deploy)
    NEW_VERSION="${NEW_VERSION:-(see npx wrangler deployments status --env $ENV_NAME)}"
    note "deployed version: $NEW_VERSION"
  fi
fi

# ── 8. rollout ──────────────────────────────────────────────────────────────
healthy() { # healthy [curl args…]: GET /health answers {"status":"ok"}
  local body
  body=$(curl -fsS --max-time 10 "$@" "$BASE_URL/health" 2>/dev/null) && [[ "$body" == *'"status":"ok"'* ]]
}
wait_healthy() { # wait_healthy SECONDS [curl args…]
  local deadline=$((SECONDS + $1)); shift
  until healthy "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 5
  done
}
roll_back_to_old() {
  warn "$1: sending all traffic back to $OLD_VERSION"
  run npx wrangler versions deploy "$OLD_VERSION@100%" --env "$ENV_NAME" --yes --message "deploy.sh: $1"
  die "$1 (rolled back to $OLD_VERSION; the D1 migrations stay applied)"
}
OVERRIDE="Cloudflare-Workers-Version-Overrides: $WORKER_NAME=\"$NEW_VERSION\""
if [ "$MODE" = gradual ]; then
  step "gradual rollout: $CANARY_PERCENT% for ${CANARY_SECONDS}s, then 100%"
  wrangler versions deploy "$NEW_VERSION@$CANARY_PERCENT%" "$OLD_VERSION@$((100 - CANARY_PERCENT))%" --yes --message "$DEPLOY_MESSAGE (canary)"
  show curl -fsS -H "$OVERRIDE" "$BASE_URL/health"
  if [ "$DRY_RUN" = 0 ]; then
    wait_healthy 60 -H "$OVERRIDE" || roll_back_to_old "the new version fails /health"
    note "the new version answers /health; watching for ${CANARY_SECONDS}s"
    failures=0
    end=$((SECONDS + CANARY_SECONDS))
    while [ $SECONDS -lt $end ]; do
      sleep 10
      if healthy -H "$OVERRIDE" && healthy; then failures=0; else failures=$((failures + 1)); warn "/health failed ($failures in a row)"; fi
      [ $failures -lt 3 ] || roll_back_to_old "/health failed three times in a row during the canary"
    done
  else
    note "dry run: /health checked through the override, then every 10 s for ${CANARY_SECONDS}s; three failures in a row → $OLD_VERSION@100%"
  fi
  wrangler versions deploy "$NEW_VERSION@100%" --yes --message "$DEPLOY_MESSAGE"
  # Versions carry code, bindings and secrets; routes, crons and queue consumers are applied here.
  wrangler triggers deploy
else
  step "rollout: none (the direct deploy already serves all traffic, with its routes, crons and consumers)"
fi

# ── 9. verify ───────────────────────────────────────────────────────────────
step "verify $BASE_URL"
show curl -fsS "$BASE_URL/health"
show curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$BASE_URL/admin/session"
if [ "$DRY_RUN" = 0 ]; then
  if ! wait_healthy 120; then
    [ "$MODE" = gradual ] && roll_back_to_old "/health fails after the rollout"
    die "/health fails after a direct deploy; see the rollback notes below and docs/operations.md"
  fi
  note "/health: ok"
  read -r code location < <(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}\n' "$BASE_URL/admin/session" || echo "000 -")
  if [[ "$code" =~ ^30[0-9]$ && "$location" == *cloudflareaccess.com* ]] || [ "$code" = 403 ]; then
    note "/admin is behind Cloudflare Access ($code)"
  else
    warn "/admin answers the internet directly (HTTP $code): put Cloudflare Access in front of $BASE_URL/admin (docs/operations.md)"
  fi
else
  note "dry run: /health must answer {\"status\":\"ok\"} within 120 s; /admin/session must answer Access's redirect (or 403), else a warning"
fi

# ── 10. rollback commands ───────────────────────────────────────────────────
step "rollback commands"
{
  echo "environment:  $ENV_NAME ($WORKER_NAME, $BASE_URL)"
  echo "commit:       $GIT_SHA"
  echo "release path: $MODE"
  echo "version:      $NEW_VERSION (previous: ${OLD_VERSION})"
  echo "D1 bookmark:  $BOOKMARK (before the migrations)"
  echo
  if [ "$MODE" = gradual ]; then
    echo "Code rollback (D1, KV, R2, queues and Durable Object storage stay as they are):"
    echo "  npx wrangler rollback $OLD_VERSION --env $ENV_NAME --message 'rollback of $GIT_SHA'"
  else
    echo "Code rollback: not past a Durable Object migration. Roll forward with a fix,"
    echo "or roll back to a version at or after migration tag $DO_TAG:  npx wrangler versions list --env $ENV_NAME"
  fi
  echo "D1 restore (destructive: overwrites $D1_NAME, losing every write since the bookmark):"
  echo "  npx wrangler d1 time-travel restore DB --env $ENV_NAME --bookmark=$BOOKMARK"
} | if [ "$DRY_RUN" = 1 ]; then sed 's/^/   /'; else tee "$OUT/summary.txt" | sed 's/^/   /'; fi
[ "$DRY_RUN" = 1 ] && printf '\nDry run: nothing was installed, built, uploaded or changed.\n' || printf '\nDeployed %s to %s. Summary: %s/summary.txt\n' "$GIT_SHA" "$ENV_NAME" "$OUT"
