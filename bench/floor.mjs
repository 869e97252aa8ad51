// The platform floor: a plain JavaScript worker that makes, for each
// benchmarked endpoint, the same binding calls in the same order as our
// worker (same Durable Object round trips with the same storage writes, same
// D1 statements, same KV reads and writes, same FAL calls), and nothing else:
// no validation, no key hashing, no signature checks. `bench` runs it under
// the same Miniflare set-up right after the real worker, so each endpoint's
// requests/s can be read against what the runtime allows for its calls.
import { DurableObject } from "cloudflare:workers";

const json = (body, status = 200) => Response.json(body, { status });

export class RateLimiter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS committed (month TEXT PRIMARY KEY, count INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, month TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)");
    sql.exec("CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, charged INTEGER NOT NULL, at_ms INTEGER NOT NULL)");
  }

  async fetch(request) {
    const call = await request.json();
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    if (call.op === "admit") {
      sql.exec("INSERT OR REPLACE INTO bucket (id, tokens, updated_ms) VALUES (1, ?, ?)", 10, now);
      if (call.reserve) {
        sql.exec("INSERT OR REPLACE INTO reservations (id, month, created_ms, expires_ms) VALUES (?, ?, ?, ?)", call.reserve, "2026-11", now, now + 60000);
      }
      return json({ admitted: true, limits: { remaining: 10, reset: now } });
    }
    // settle
    sql.exec("SELECT charged FROM settled WHERE id = ?", call.id).toArray();
    sql.exec("DELETE FROM reservations WHERE id = ?", call.id);
    sql.exec("INSERT OR REPLACE INTO committed (month, count) VALUES (?, ?)", "2026-11", 1);
    sql.exec("INSERT INTO settled (id, charged, at_ms) VALUES (?, 1, ?) ON CONFLICT (id) DO NOTHING", call.id, now);
    return json({ settled: true });
  }
}

function limiter(env, client) {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(client));
  return async (body) => (await stub.fetch("https://limiter/", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json();
}

function clientOf(request) {
  const key = request.headers.get("x-api-key") || "";
  return "cl_" + (key.split("_")[1] || "none");
}

function record(env, id, client, now) {
  const db = env.DB;
  const day = Math.floor(now / 86400000);
  return db.batch([
    db.prepare("INSERT INTO generations (id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
      .bind(id, client, "fal-virtual-try-on", "success", "/api/images/generate", 5, 4, "https://x/y.png", null, 1, 0, null, now),
    db.prepare("INSERT INTO usage_daily (client_id, day, model, success_count, error_count, duration_ms_sum) VALUES (?1, ?2, ?3, 1, 0, 5) ON CONFLICT (client_id, day, model) DO UPDATE SET success_count = success_count + 1, duration_ms_sum = duration_ms_sum + 5")
      .bind(client, day, "fal-virtual-try-on"),
    db.prepare("INSERT INTO usage_monthly (client_id, month, success_count, error_count) VALUES (?1, ?2, 1, 0) ON CONFLICT (client_id, month) DO UPDATE SET success_count = success_count + 1")
      .bind(client, "2026-11"),
    db.prepare("INSERT INTO usage_totals_daily (day, success_count, error_count) VALUES (?1, 1, 0) ON CONFLICT (day) DO UPDATE SET success_count = success_count + 1")
      .bind(day),
  ]);
}

const FAL_INPUT = JSON.stringify({ person_image_url: "https://example.com/p.png", clothing_image_url: "https://example.com/g.png" });
const falHeaders = (env) => ({ "content-type": "application/json", authorization: `Key ${env.FAL_KEY}` });

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const path = url.pathname;
    const now = Date.now();
    if (path === "/health") return json({ status: "ok" });
    if (path === "/admin/login") return new Response("{}", { headers: { "set-cookie": "floor_session=x; Path=/" } });
    if (path === "/api/usage") {
      return json(await limiter(env, clientOf(request))({ op: "admit" }));
    }
    if (path === "/api/images/generate") {
      const client = clientOf(request);
      const id = "gen_" + crypto.randomUUID();
      const call = limiter(env, client);
      await call({ op: "admit", reserve: id });
      const fal = await fetch(`${env.FAL_BASE_URL}/fal-ai/image-apps-v2/virtual-try-on`, { method: "POST", headers: falHeaders(env), body: FAL_INPUT });
      const output = await fal.json();
      await record(env, id, client, now);
      ctx.waitUntil(call({ op: "settle", id }));
      return json({ id, image_url: output.images?.[0]?.url });
    }
    if (path === "/api/jobs" && request.method === "POST") {
      const client = clientOf(request);
      const id = "job_" + crypto.randomUUID().replaceAll("-", "").slice(0, 20);
      await limiter(env, client)({ op: "admit", reserve: id });
      const hook = `${url.origin}/api/webhooks/fal?job=${id}`;
      const fal = await fetch(`${env.FAL_QUEUE_URL}/fal-ai/image-apps-v2/virtual-try-on?fal_webhook=${encodeURIComponent(hook)}`, { method: "POST", headers: falHeaders(env), body: FAL_INPUT });
      const refs = await fal.json();
      const job = { id, client, status: "queued", created_at: now, fal: refs };
      await env.JOBS.put(`job:${id}`, JSON.stringify(job), { expirationTtl: 86400 });
      return json(job, 202);
    }
    if (path.startsWith("/api/jobs/")) {
      const [, job] = await Promise.all([limiter(env, clientOf(request))({ op: "admit" }), env.JOBS.get(`job:${path.slice(10)}`)]);
      return job ? new Response(job, { headers: { "content-type": "application/json" } }) : json({ error: "not found" }, 404);
    }
    if (path === "/api/webhooks/fal") {
      await request.text();
      const id = url.searchParams.get("job");
      const stored = await env.JOBS.get(`job:${id}`);
      if (!stored) return json({ error: "not visible yet" }, 503);
      const job = JSON.parse(stored);
      await record(env, "gen_" + id, job.client, now);
      job.status = "done";
      await env.JOBS.put(`job:${id}`, JSON.stringify(job), { expirationTtl: 86400 });
      await limiter(env, job.client)({ op: "settle", id });
      return json({ received: true });
    }
    if (path === "/api/generations") {
      const client = clientOf(request);
      const [owner, page] = await env.DB.batch([
        env.DB.prepare("SELECT client_id FROM api_keys WHERE key_hash = ?1").bind("x"),
        env.DB.prepare("SELECT * FROM generations WHERE client_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 21").bind(client),
      ]);
      return json({ data: page.results, owner: owner.results });
    }
    if (path.startsWith("/admin/clients/")) {
      const client = path.split("/")[3];
      await env.DB.prepare("SELECT * FROM admin_sessions WHERE token_hash = ?1").bind("x").first();
      await env.DB.prepare("SELECT * FROM clients WHERE id = ?1").bind(client).first();
      const results = await env.DB.batch([
        env.DB.prepare("SELECT * FROM usage_monthly WHERE client_id = ?1").bind(client),
        env.DB.prepare("SELECT * FROM usage_daily WHERE client_id = ?1 AND day >= ?2").bind(client, Math.floor(now / 86400000) - 30),
        env.DB.prepare("SELECT * FROM generations WHERE client_id = ?1 ORDER BY created_at DESC LIMIT 1").bind(client),
      ]);
      return json({ results: results.map((r) => r.results.length) });
    }
    return json({ error: "not found" }, 404);
  },
};
