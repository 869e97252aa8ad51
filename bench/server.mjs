// Runs the built worker (build/index.js) in workerd through Miniflare's API,
// with the inspector off and no wrangler dev proxy in front, so a benchmark
// measures the worker and its bindings rather than the dev tooling. Bindings
// match wrangler.toml; state persists under STATE, where wrangler's
// migrations (and the seeder) put the D1 database.
// Prints one JSON line {"url", "ready_ms"} when ready; stops on SIGTERM.
import { Miniflare } from "miniflare";
import path from "node:path";

const state = process.env.STATE;
const started = Date.now();
const mf = new Miniflare({
  // SCRIPT=bench/floor.mjs runs the platform-floor worker instead,
  // bench/js-flow.mjs the plain JavaScript worker, bench/count.mjs ours with
  // its billable operations counted.
  scriptPath: path.resolve(process.env.SCRIPT || "build/index.js"),
  modules: true,
  // Our build's JavaScript is ES modules: bench/count.mjs imports it, and
  // Miniflare would otherwise read an imported `.js` as CommonJS.
  modulesRules: [
    { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
    { type: "ESModule", include: ["**/*.js"], fallthrough: true },
  ],
  compatibilityDate: "2026-04-20",
  host: "127.0.0.1",
  port: Number(process.env.PORT || 0),
  // Only for profiling (`INSPECTOR_PORT=9229`): the inspector costs as much as the calls it reports.
  ...(process.env.INSPECTOR_PORT ? { inspectorPort: Number(process.env.INSPECTOR_PORT) } : {}),
  d1Databases: { DB: "00000000-0000-0000-0000-000000000000" },
  kvNamespaces: { JOBS: "00000000000000000000000000000000" },
  r2Buckets: { RESULTS: "tryon-results" },
  durableObjects: {
    RATE_LIMITER: { className: "RateLimiter", useSQLite: true },
    LOGIN_THROTTLE: { className: "LoginThrottle", useSQLite: true },
  },
  // The outbound events queue (wrangler.toml [[queues.*]]): the worker
  // refuses to start without its producer. No METRICS_ENDPOINT and no client
  // callbacks here, so the benchmark enqueues nothing.
  queueProducers: { EVENTS: "tryon-events" },
  queueConsumers: {
    "tryon-events": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 8, deadLetterQueue: "tryon-events-dlq" },
    "tryon-events-dlq": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 8 },
  },
  d1Persist: path.join(state, "v3", "d1"),
  kvPersist: path.join(state, "v3", "kv"),
  r2Persist: path.join(state, "v3", "r2"),
  durableObjectsPersist: path.join(state, "v3", "do"),
  bindings: {
    FAL_BASE_URL: process.env.FAL_URL,
    FAL_QUEUE_URL: `${process.env.FAL_URL}/queue`,
    FAL_JWKS_URL: `${process.env.FAL_URL}/.well-known/jwks.json`,
    FAL_KEY: process.env.FAL_KEY,
    ADMIN_PASSWORD: process.env.ADMIN_PASSWORD,
    // Result URLs are signed; a fixed benchmark-only key.
    SIGNING_KEYS: "bench:benchmark-signing-secret-0123456789abcdef",
    // Loopback image URLs (the emulator's samples) are honoured only in development.
    ENVIRONMENT: "development",
    ALLOW_LOOPBACK_IMAGE_URLS: "true",
    // More settings for one scenario (e.g. callbacks and metrics forwarding on).
    ...JSON.parse(process.env.EXTRA_BINDINGS || "{}"),
  },
});
const url = await mf.ready;
console.log(JSON.stringify({ url: url.origin, ready_ms: Date.now() - started }));
const stop = async () => { await mf.dispose(); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
