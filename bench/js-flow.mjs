// The obvious alternative, as a second reference for the benchmark: a plain
// JavaScript worker doing the same job as ours, written the way anyone
// would write it. API key looked up in D1 by its SHA-256; a Durable Object
// token bucket called over RPC; the FAL call; one D1 insert. Jobs: FAL's
// queue with a webhook URL, the job kept in KV; FAL's webhook verified
// (Ed25519 against FAL's JWKS), then one D1 insert and the KV copy updated.
// No monthly quota, no concurrency cap, no rollups, no result copy, no
// events: what it does not do is what our guarantees cost.
//
// `bench` runs it under the same Miniflare set-up (bench/server.mjs, same
// seeded clients and keys, same FAL emulator), alternating with ours.
import { DurableObject } from "cloudflare:workers";

const json = (body, status = 200, headers = {}) => Response.json(body, { status, headers });
const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
const MODEL = "fal-virtual-try-on";
const FAL_APP = "fal-ai/image-apps-v2/virtual-try-on";

// The rate limit: a token bucket per client, in a SQLite-backed object.
export class RateLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)");
  }

  take(perMinute) {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const row = sql.exec("SELECT tokens, updated_ms FROM bucket WHERE id = 1").toArray()[0];
    let tokens = row ? Math.min(perMinute, row.tokens + ((now - row.updated_ms) * perMinute) / 60000) : perMinute;
    if (tokens < 1) return { ok: false, retryAfter: Math.ceil(((1 - tokens) * 60) / perMinute) };
    tokens -= 1;
    sql.exec("INSERT OR REPLACE INTO bucket (id, tokens, updated_ms) VALUES (1, ?, ?)", tokens, now);
    return { ok: true, remaining: Math.floor(tokens) };
  }
}

// Bound by bench/server.mjs for our worker's admin login; unused here.
export class LoginThrottle extends DurableObject {}

async function client(request, env) {
  const key = request.headers.get("x-api-key") || (request.headers.get("authorization") || "").replace(/^Bearer /, "");
  if (!key) return null;
  const hash = hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  return env.DB.prepare(
    "SELECT c.id, c.active, c.rate_limit_per_minute FROM api_keys k JOIN clients c ON c.id = k.client_id WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
  )
    .bind(hash)
    .first();
}

async function admitted(request, env) {
  const row = await client(request, env);
  if (!row) return { refused: json({ error: "invalid api key" }, 401) };
  if (!row.active) return { refused: json({ error: "client inactive" }, 403) };
  const bucket = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(row.id));
  const taken = await bucket.take(row.rate_limit_per_minute);
  if (!taken.ok) return { refused: json({ error: "rate limited" }, 429, { "retry-after": String(taken.retryAfter) }) };
  return { client: row.id, remaining: taken.remaining };
}

async function tryOnInput(request) {
  const body = await request.json().catch(() => null);
  const person = body?.person_image_url;
  const garment = body?.garment_image_urls?.[0];
  if (typeof person !== "string" || typeof garment !== "string") return null;
  return { person_image_url: person, clothing_image_url: garment };
}

const falHeaders = (env) => ({ "content-type": "application/json", authorization: `Key ${env.FAL_KEY}` });

function insertGeneration(env, g) {
  return env.DB.prepare(
    "INSERT INTO generations (id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 0, ?10, ?11)",
  )
    .bind(g.id, g.client, MODEL, g.status, g.endpoint, g.duration, g.falDuration, g.imageUrl, g.error, g.jobId, g.createdAt)
    .run();
}

async function generate(request, env) {
  const started = Date.now();
  const input = await tryOnInput(request);
  if (!input) return json({ error: "invalid request" }, 400);
  const { client: id, refused } = await admitted(request, env);
  if (refused) return refused;
  const falStarted = Date.now();
  const fal = await fetch(`${env.FAL_BASE_URL}/${FAL_APP}`, { method: "POST", headers: falHeaders(env), body: JSON.stringify(input) });
  const output = await fal.json().catch(() => null);
  const falDuration = Date.now() - falStarted;
  const imageUrl = fal.ok ? output?.images?.[0]?.url : null;
  const generation = {
    id: "gen_" + crypto.randomUUID().replaceAll("-", ""),
    client: id,
    status: imageUrl ? "success" : "error",
    endpoint: "/api/images/generate",
    duration: Date.now() - started,
    falDuration,
    imageUrl,
    error: imageUrl ? null : `FAL answered ${fal.status}`,
    jobId: null,
    createdAt: started,
  };
  await insertGeneration(env, generation);
  if (!imageUrl) return json({ error: generation.error }, 502);
  return json(
    { generation_id: generation.id, image_url: imageUrl, model: MODEL, duration_ms: Date.now() - started },
    200,
    { "server-timing": `fal;dur=${falDuration}` },
  );
}

async function createJob(request, env) {
  const started = Date.now();
  const input = await tryOnInput(request);
  if (!input) return json({ error: "invalid request" }, 400);
  const { client: id, refused } = await admitted(request, env);
  if (refused) return refused;
  const jobId = "job_" + crypto.randomUUID().replaceAll("-", "");
  const hook = `${new URL(request.url).origin}/api/webhooks/fal?job=${jobId}`;
  const falStarted = Date.now();
  const fal = await fetch(`${env.FAL_QUEUE_URL}/${FAL_APP}?fal_webhook=${encodeURIComponent(hook)}`, {
    method: "POST",
    headers: falHeaders(env),
    body: JSON.stringify(input),
  });
  const falDuration = Date.now() - falStarted;
  if (!fal.ok) return json({ error: `FAL answered ${fal.status}` }, 502);
  const submitted = await fal.json();
  const job = { id: jobId, client_id: id, status: "queued", model: MODEL, created_at: started, request_id: submitted.request_id };
  await env.JOBS.put(`job:${jobId}`, JSON.stringify(job), { expirationTtl: 3600 });
  return json(job, 202, { location: `/api/jobs/${jobId}`, "server-timing": `fal;dur=${falDuration}` });
}

async function readJob(request, env, jobId) {
  const row = await client(request, env);
  if (!row) return json({ error: "invalid api key" }, 401);
  const stored = await env.JOBS.get(`job:${jobId}`, "json");
  if (!stored || stored.client_id !== row.id) return json({ error: "no such job" }, 404);
  return json(stored);
}

// FAL's signing keys, kept for an hour.
let falKeys = null;
async function signingKeys(env) {
  if (!falKeys || Date.now() - falKeys.at > 3600_000) {
    const { keys } = await (await fetch(env.FAL_JWKS_URL)).json();
    const imported = await Promise.all(keys.map((k) => crypto.subtle.importKey("jwk", k, { name: "Ed25519" }, false, ["verify"])));
    falKeys = { at: Date.now(), keys: imported };
  }
  return falKeys.keys;
}

async function verifiedByFal(request, body, env) {
  const h = (name) => request.headers.get(`x-fal-webhook-${name}`);
  const [requestId, userId, timestamp, signature] = [h("request-id"), h("user-id"), h("timestamp"), h("signature")];
  if (!requestId || !userId || !timestamp || !signature) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const digest = hex(await crypto.subtle.digest("SHA-256", body));
  const message = new TextEncoder().encode(`${requestId}\n${userId}\n${timestamp}\n${digest}`);
  const bytes = new Uint8Array((signature.match(/../g) || []).map((b) => parseInt(b, 16)));
  for (const key of await signingKeys(env)) {
    if (await crypto.subtle.verify("Ed25519", key, bytes, message)) return true;
  }
  return false;
}

async function falWebhook(request, env) {
  const body = await request.arrayBuffer();
  if (!(await verifiedByFal(request, body, env))) return json({ error: "invalid signature" }, 401);
  const report = JSON.parse(new TextDecoder().decode(body));
  const jobId = new URL(request.url).searchParams.get("job");
  const job = await env.JOBS.get(`job:${jobId}`, "json");
  if (!job) return json({ error: "not visible yet" }, 503);
  if (job.request_id !== report.request_id) return json({ error: "another job's webhook" }, 400);
  if (job.status !== "queued") return json({ received: true, changed: false });
  const now = Date.now();
  const imageUrl = report.status === "OK" ? report.payload?.images?.[0]?.url : null;
  await insertGeneration(env, {
    id: "gen_" + jobId,
    client: job.client_id,
    status: imageUrl ? "success" : "error",
    endpoint: "/api/jobs",
    duration: now - job.created_at,
    falDuration: now - job.created_at,
    imageUrl,
    error: imageUrl ? null : report.error || "FAL failed",
    jobId,
    createdAt: job.created_at,
  });
  Object.assign(job, { status: imageUrl ? "done" : "error", image_url: imageUrl, completed_at: now });
  await env.JOBS.put(`job:${jobId}`, JSON.stringify(job), { expirationTtl: 3600 });
  return json({ received: true, changed: true });
}

async function listGenerations(request, env) {
  const row = await client(request, env);
  if (!row) return json({ error: "invalid api key" }, 401);
  const limit = Math.min(100, Number(new URL(request.url).searchParams.get("limit")) || 20);
  const { results } = await env.DB.prepare(
    "SELECT id, model, status, duration_ms, image_url, error, job_id, created_at FROM generations WHERE client_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
  )
    .bind(row.id, limit)
    .all();
  return json({ data: results });
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const method = request.method;
    if (pathname === "/health") return json({ status: "ok" });
    if (pathname === "/api/images/generate" && method === "POST") return generate(request, env);
    if (pathname === "/api/jobs" && method === "POST") return createJob(request, env);
    if (pathname.startsWith("/api/jobs/") && method === "GET") return readJob(request, env, pathname.slice("/api/jobs/".length));
    if (pathname === "/api/webhooks/fal" && method === "POST") return falWebhook(request, env);
    if (pathname === "/api/generations" && method === "GET") return listGenerations(request, env);
    if (pathname === "/api/usage") {
      const row = await client(request, env);
      return row ? json({ client_id: row.id }) : json({ error: "invalid api key" }, 401);
    }
    return json({ error: "not found" }, 404);
  },
};
