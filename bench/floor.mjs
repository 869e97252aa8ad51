// The platform floor: a plain JavaScript worker that makes, for each
// benchmarked endpoint, the same binding calls in the same order as our
// worker, and nothing else (no validation, no signature checks, no error
// handling). Per try-on: the client's limiter object (the same SQLite
// tables and statements: rate bucket, reservation, shopper row, live job),
// FAL's call, a look at FAL's output file (its headers and first bytes),
// the same D1 batch (the generation row and its rollups), then after the
// answer the file's copy into R2 and the row's `result_status` update, the
// settle call, and for jobs the KV copies at creation and at the end. The
// one hash it computes (a key's SHA-256, which D1's key check reads by) is
// remembered per key, so its cost does not count. `bench` runs it under the
// same Miniflare set-up right after the real worker, so each endpoint's
// requests/s can be read against what the runtime allows for its calls;
// `bench costs --floor` counts its calls (bench/count-floor.mjs) next to ours.
const json = (body, status = 200) => Response.json(body, { status });
const MODEL = "fal-virtual-try-on";
const FAL_ENDPOINT = "fal-ai/image-apps-v2/virtual-try-on";
const HOUR_MS = 3600000;

// Our limiter's tables (src/limiter/schema.rs, as its last step leaves them), the ones a request writes.
const SCHEMA = [
  "CREATE TABLE IF NOT EXISTS committed (month TEXT PRIMARY KEY, count INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, month TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, stale INTEGER NOT NULL DEFAULT 0, meta TEXT)",
  "CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, charged INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
  "CREATE INDEX IF NOT EXISTS settled_at ON settled (at_ms)",
  "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
  "CREATE INDEX IF NOT EXISTS jobs_expires ON jobs (expires_ms)",
  "CREATE TABLE IF NOT EXISTS shoppers (id TEXT PRIMARY KEY, day INTEGER NOT NULL, attempts INTEGER NOT NULL, tokens REAL, updated_ms INTEGER, bucket TEXT)",
  "CREATE INDEX IF NOT EXISTS shoppers_day ON shoppers (day)",
  "CREATE TABLE IF NOT EXISTS rate_buckets (name TEXT PRIMARY KEY, state TEXT NOT NULL)",
];

const month = (now) => new Date(now).toISOString().slice(0, 7);
const day = (now) => Math.floor(now / 86400000);

// The statements of our limiter's calls (src/limiter/object.rs), in its order.
// A plain class (as ours is to the runtime), so bench/count-floor.mjs can hand
// it counting storage.
export class RateLimiter {
  constructor(ctx) {
    this.ctx = ctx;
    for (const ddl of SCHEMA) ctx.storage.sql.exec(ddl);
  }

  async fetch(request) {
    const call = JSON.parse(await request.text());
    const sql = this.ctx.storage.sql;
    const now = call.now;
    const path = new URL(request.url).pathname;
    if (path === "/admit") {
      const limits = { rate_limit_per_minute: 6000, rate_remaining: 100, month: month(now), quota_used: 1, quota_remaining: 1000000 };
      if (call.reserve) {
        if (call.shopper_id) sql.exec("SELECT day, attempts, tokens, updated_ms, bucket FROM shoppers WHERE id = ?", call.shopper_id).toArray();
        const bucket = JSON.stringify({ tokens: 99.5, updated_ms: now });
        sql.exec("INSERT OR REPLACE INTO rate_buckets (name, state) VALUES (?, ?)", call.shopper_id ? "widget" : "api", bucket);
        sql.exec(
          "INSERT OR REPLACE INTO reservations (id, month, created_ms, expires_ms, stale, meta) VALUES (?, ?, ?, ?, ?, ?)",
          call.reserve.id, month(now), now, now + call.reserve.ttl_ms, 0, JSON.stringify(call.reserve.meta),
        );
        if (call.shopper_id) {
          sql.exec("INSERT OR REPLACE INTO shoppers (id, day, attempts, bucket) VALUES (?, ?, ?, ?)", call.shopper_id, day(now), 1, bucket);
        }
      }
      const job = call.job ? sql.exec("SELECT body FROM jobs WHERE id = ?", call.job.id).toArray()[0] : undefined;
      this.nextExpiry();
      return json({ decision: "admitted", client: { client_id: call.client }, limits, job: job ? JSON.parse(job.body) : null });
    }
    if (path === "/settle") {
      if (call.reservation) this.settle(call.reservation[0], now);
      return json({ settled: true });
    }
    if (path === "/jobs/create") {
      const live = { job: call.job, version: 1, expires_ms: call.job.created_at + call.ttl_ms, polled_ms: 0, follow_until: 0 };
      this.putJob(live);
      this.nextExpiry();
      return json({ job: live.job, version: 1, poll: false });
    }
    if (path === "/jobs/get") {
      const row = sql.exec("SELECT body FROM jobs WHERE id = ?", call.id).toArray()[0];
      return json(row ? { job: JSON.parse(row.body).job, version: 1, poll: false } : null);
    }
    if (path === "/jobs/finish") {
      const live = JSON.parse(sql.exec("SELECT body FROM jobs WHERE id = ?", call.id).toArray()[0].body);
      Object.assign(live.job, { status: "completed", completed_at: now, fal_end: now, image_url: call.image_url });
      live.version += 1;
      this.putJob(live);
      this.settle(call.id, now);
      return json({ job: { job: live.job, version: live.version, poll: false }, ended_now: true });
    }
    return json({ error: "unknown limiter call" }, 404);
  }

  putJob(live) {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO jobs (id, body, expires_ms) VALUES (?, ?, ?)", live.job.id, JSON.stringify(live), live.expires_ms);
  }

  // Our object looks for the next job expiry before deciding about its alarm.
  nextExpiry() {
    this.ctx.storage.sql.exec("SELECT MIN(expires_ms) AS expires_ms FROM jobs WHERE expires_ms IS NOT NULL").toArray();
  }

  settle(id, now) {
    const sql = this.ctx.storage.sql;
    sql.exec("SELECT charged FROM settled WHERE id = ?", id).toArray();
    sql.exec("INSERT OR REPLACE INTO committed (month, count) VALUES (?, ?)", month(now), 1);
    sql.exec("DELETE FROM reservations WHERE id = ?", id);
    sql.exec("INSERT INTO settled (id, charged, at_ms) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET charged = MAX(charged, excluded.charged)", id, 1, now);
  }
}

function limiter(env, client, path, body) {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(client));
  const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  return stub.fetch(`https://limiter${path}`, init).then((r) => r.json());
}

// `vto_<client suffix>_…` or `vto_pk_<client suffix>_…`.
const clientOf = (key) => "cl_" + key.replace(/^vto_(pk_)?/, "").split("_")[0];

const hashes = new Map();
async function keyHash(key) {
  if (!hashes.has(key)) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
    hashes.set(key, [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join(""));
  }
  return hashes.get(key);
}

const suffix = () => crypto.randomUUID().replaceAll("-", "").slice(0, 20);
const falHeaders = (env) => ({ "content-type": "application/json", authorization: `Key ${env.FAL_KEY}` });
const falInput = (body) => JSON.stringify({ person_image_url: body.person_image_url, clothing_image_url: body.garment_image_urls?.[0] });

// src/store/generations.rs: the row and its rollups, one batch.
const COLUMNS = "id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at, shopper_id, metadata, result_status, result_content_type, result_bytes, result_error";
function record(env, row) {
  const db = env.DB;
  return db.batch([
    db.prepare(`INSERT INTO generations (${COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)`)
      .bind(row.id, row.client, MODEL, "success", row.endpoint, row.duration_ms, row.duration_ms, row.image_url, null, 1, 0, row.job_id, row.created_at, row.shopper_id, null, "pending", "image/png", row.bytes, null),
    db.prepare(`INSERT INTO usage_daily (client_id, day, model, success_count, error_count, duration_ms_sum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (client_id, day, model) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count,
           duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum`)
      .bind(row.client, day(row.created_at), MODEL, 1, 0, row.duration_ms),
    db.prepare(`INSERT INTO usage_monthly (client_id, month, success_count, error_count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id, month) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count`)
      .bind(row.client, month(row.created_at), 1, 0),
    db.prepare(`INSERT INTO usage_totals_daily (day, success_count, error_count) VALUES (?1, ?2, ?3)
         ON CONFLICT (day) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count`)
      .bind(day(row.created_at), 1, 0),
  ]);
}

// src/results/capture.rs: FAL's file, until its headers and first bytes arrive.
async function look(url) {
  const file = await fetch(url);
  const [head, rest] = file.body.tee();
  const reader = head.getReader();
  await reader.read();
  reader.cancel();
  return { rest, bytes: Number(file.headers.get("content-length")) };
}

// After the answer: the rest of the file into R2, then the row says so.
async function keep(env, file, client, id) {
  const { readable, writable } = new FixedLengthStream(file.bytes);
  await Promise.all([file.rest.pipeTo(writable), env.RESULTS.put(`results/${client}/${id}`, readable, { httpMetadata: { contentType: "image/png" } })]);
  await env.DB.prepare(
    `UPDATE generations SET result_status = 'stored', result_error = NULL
         WHERE id = ?1 AND client_id = ?2 AND result_status IN ('pending', 'failed')`,
  ).bind(id, client).run();
}

const keepJob = (env, job, now) => env.JOBS.put(`job:${job.id}`, JSON.stringify(job), { expirationTtl: Math.max(60, 86400 - Math.floor((now - job.created_at) / 1000)) });

async function generate(request, env, ctx, now) {
  const key = request.headers.get("x-api-key") || "";
  const client = clientOf(key);
  const shopper = request.headers.get("x-tryon-shopper");
  const body = await request.json();
  const id = "gen_" + suffix();
  const meta = { model: MODEL, garments_count: 1, endpoint: "/api/images/generate", job: false, deadline_ms: now + 180000 };
  await limiter(env, client, "/admit", { client, key_hash: "", shopper_id: shopper, now, reserve: { id, ttl_ms: 180000, meta } });
  const fal = await fetch(`${env.FAL_BASE_URL}/${FAL_ENDPOINT}`, { method: "POST", headers: falHeaders(env), body: falInput(body) });
  const output = await fal.json();
  const image = output.images[0];
  const file = await look(image.url);
  const duration_ms = Date.now() - now;
  await record(env, { id, client, endpoint: "/api/images/generate", duration_ms, image_url: image.url, job_id: null, created_at: now, shopper_id: shopper, bytes: file.bytes });
  ctx.waitUntil(keep(env, file, client, id));
  ctx.waitUntil(limiter(env, client, "/settle", { reservation: [id, "success"], now }));
  return json({ generation_id: id, image_url: `${new URL(request.url).origin}/api/results/${id}`, model: MODEL, duration_ms, image: { ...image, content_type: "image/png" } });
}

async function createJob(request, env, ctx, now, url) {
  const client = clientOf(request.headers.get("x-api-key") || "");
  const body = await request.json();
  const id = "job_" + suffix();
  const meta = { model: MODEL, garments_count: 1, endpoint: "/api/jobs", job: true, deadline_ms: now + 900000 };
  await limiter(env, client, "/admit", { client, key_hash: "", now, reserve: { id, ttl_ms: 900000, meta } });
  const hook = `${url.origin}/api/webhooks/fal?job=${id}&client=${client}`;
  const fal = await fetch(`${env.FAL_QUEUE_URL}/${FAL_ENDPOINT}?fal_webhook=${encodeURIComponent(hook)}`, { method: "POST", headers: falHeaders(env), body: falInput(body) });
  const refs = await fal.json();
  const job = { id, status: "queued", created_at: now, fal_start: now, client_id: client, garments_count: 1, model: MODEL, queue_position: refs.queue_position, fal: refs };
  await limiter(env, client, "/jobs/create", { job, ttl_ms: 86400000 });
  ctx.waitUntil(keepJob(env, job, now));
  // Ours completes the request at its limiter (here with nothing to settle) after the answer.
  ctx.waitUntil(limiter(env, client, "/settle", { now }));
  return new Response(JSON.stringify(job), { status: 202, headers: { "content-type": "application/json", location: `/api/jobs/${id}` } });
}

async function webhook(request, env, ctx, now, url) {
  const delivery = JSON.parse(await request.text());
  const [id, client] = [url.searchParams.get("job"), url.searchParams.get("client")];
  const state = await limiter(env, client, "/jobs/get", { id });
  if (!state) return json({ error: "not visible yet" }, 503);
  const job = state.job;
  const image_url = delivery.payload.images[0].url;
  const file = await look(image_url);
  const generation = "gen_" + id.slice(4);
  await record(env, { id: generation, client, endpoint: "/api/jobs", duration_ms: now - job.created_at, image_url, job_id: id, created_at: job.created_at, shopper_id: null, bytes: file.bytes });
  ctx.waitUntil(keep(env, file, client, generation));
  const finished = await limiter(env, client, "/jobs/finish", { id, image_url, now });
  ctx.waitUntil(keepJob(env, finished.job.job, now));
  return json({ received: true, changed: true });
}

const CLIENT_COLUMNS = "id, name, email, active, usage_limit, rate_limit_per_minute, rate_limit_burst, max_concurrent, allowed_origins, webhook_url, webhook_secret_version, created_at, updated_at, snapshot_version, widget_rate_limit_per_minute, shopper_rate_limit_per_minute, shopper_daily_limit, retention_days, deleted_at, webhook_events, callbacks_paused_at, callbacks_failing_since, limiter_created_at";
const KEY_OWNER = `SELECT ${CLIENT_COLUMNS.split(", ").map((c) => `c.${c}`).join(", ")} FROM api_keys k JOIN clients c ON c.id = k.client_id
             WHERE k.key_hash = ?1 AND k.client_id = ?2 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?3)`;
const KEY_GUARD = "EXISTS (SELECT 1 FROM api_keys k WHERE k.key_hash = ?2 AND k.client_id = ?3 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?4))";

async function generations(request, env, now) {
  const key = request.headers.get("x-api-key") || "";
  const [client, hash] = [clientOf(key), await keyHash(key)];
  const [owner, page] = await env.DB.batch([
    env.DB.prepare(KEY_OWNER).bind(hash, client, now),
    env.DB.prepare(`SELECT ${COLUMNS} FROM generations WHERE client_id = ?1 AND ${KEY_GUARD} ORDER BY created_at DESC, id DESC LIMIT ?5`).bind(client, hash, client, now, 21),
  ]);
  return json({ data: page.results.slice(0, 20), owner: owner.results.length, next_cursor: null });
}

// The floor's admin session: one row, so the metrics call reads it as ours reads its own.
const SESSION = "floor-session";

async function metrics(env, client) {
  const db = env.DB;
  await db.prepare("SELECT created_at, last_seen_at, expires_at FROM admin_sessions WHERE token_hash = ?1").bind(SESSION).first();
  const row = await db.prepare(`SELECT ${CLIENT_COLUMNS} FROM clients WHERE id = ?1 AND deleted_at IS NULL`).bind(client).first();
  const [byModel, recent] = await db.batch([
    db.prepare(`SELECT model, SUM(success_count) AS success, SUM(error_count) AS error
                 FROM usage_daily WHERE client_id = ?1 GROUP BY model ORDER BY model`).bind(client),
    db.prepare(`SELECT ${COLUMNS} FROM generations WHERE client_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 50`).bind(client),
  ]);
  return json({ client_id: client, client_name: row?.name, generations_by_model: byModel.results, recent_events: recent.results });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const path = url.pathname;
    const now = Date.now();
    if (path === "/health") return json({ status: "ok" });
    if (path === "/admin/login") {
      await env.DB.prepare("INSERT OR REPLACE INTO admin_sessions (token_hash, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?2, ?3)")
        .bind(SESSION, now, now + 12 * HOUR_MS).run();
      return new Response("{}", { headers: { "set-cookie": "floor_session=x; Path=/" } });
    }
    if (path === "/api/usage") {
      const client = clientOf(request.headers.get("x-api-key") || "");
      return json((await limiter(env, client, "/admit", { client, key_hash: "", now })).limits);
    }
    if (path === "/api/images/generate") return generate(request, env, ctx, now);
    if (path === "/api/jobs" && request.method === "POST") return createJob(request, env, ctx, now, url);
    if (path.startsWith("/api/jobs/")) {
      const client = clientOf(request.headers.get("x-api-key") || "");
      const admitted = await limiter(env, client, "/admit", { client, key_hash: "", now, job: { id: path.slice(10), poll_after_ms: 10000 } });
      return admitted.job ? json(admitted.job.job) : json({ error: "not found" }, 404);
    }
    if (path === "/api/webhooks/fal") return webhook(request, env, ctx, now, url);
    if (path === "/api/generations") return generations(request, env, now);
    if (path.startsWith("/admin/clients/")) return metrics(env, path.split("/")[3]);
    return json({ error: "not found" }, 404);
  },
};
