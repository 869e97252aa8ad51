//! Fills a local D1 database (the SQLite file Miniflare keeps under the state
//! folder) with clients, API keys and generations, directly and fast. The
//! worker must not be running meanwhile. Keys use the worker's own code, so
//! they authenticate for real; the daily rollups are rebuilt from the rows.

use rand::Rng;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use tryon_edge::domain::api_key::{ApiKey, KeyKind};
use tryon_edge::domain::ids::ClientId;

const DAY_MS: u64 = 86_400_000;

/// The D1 database file in a wrangler/Miniflare state folder.
pub fn database_file(state: &Path) -> Result<PathBuf, String> {
    let dir = state.join("v3/d1/miniflare-D1DatabaseObject");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e} (apply the migrations first)", dir.display()))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sqlite") && p.file_name().is_some_and(|n| n != "metadata.sqlite"))
        .ok_or_else(|| format!("no D1 database in {}", dir.display()))
}

pub struct Seeded {
    /// `(client id, API key)` of every client created.
    pub clients: Vec<(String, String)>,
}

/// Adds `clients` clients with generous limits and `generations` generations
/// spread over the last `days` days (a few busy clients, a long tail).
pub fn seed(state: &Path, clients: usize, generations: usize, days: u64, now: u64) -> Result<Seeded, String> {
    let err = |e: rusqlite::Error| e.to_string();
    let mut db = Connection::open(database_file(state)?).map_err(err)?;
    db.pragma_update(None, "synchronous", "OFF").map_err(err)?;
    let tx = db.transaction().map_err(err)?;
    let mut seeded = Vec::with_capacity(clients);
    {
        let mut client_stmt = tx
            .prepare(
                "INSERT INTO clients (id, name, email, active, usage_limit, rate_limit_per_minute, max_concurrent, allowed_origins, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 1, 100000000, 100000, 1000, '[]', ?4, ?4)",
            )
            .map_err(err)?;
        let mut key_stmt = tx
            .prepare("INSERT INTO api_keys (id, client_id, key_hash, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(err)?;
        for i in 0..clients {
            let id = ClientId::generate();
            let key = ApiKey::generate(&id, KeyKind::Secret);
            let created = now - (i as u64 % 400) * DAY_MS;
            client_stmt
                .execute(params![id.as_str(), format!("Bench shop {i}"), format!("shop{i}@bench.example"), created as i64])
                .map_err(err)?;
            key_stmt
                .execute(params![tryon_edge::domain::ids::new_id("key"), id.as_str(), key.hash().0, key.display_prefix(), created as i64])
                .map_err(err)?;
            seeded.push((id.to_string(), key.reveal().to_string()));
        }
    }
    if generations > 0 {
        let ids: Vec<String> = tx
            .prepare("SELECT id FROM clients")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(err)?;
        let mut stmt = tx
            .prepare(
                "INSERT INTO generations (id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, '/api/images/generate', ?5, ?6, ?7, ?8, 1, 0, NULL, ?9)",
            )
            .map_err(err)?;
        let mut rng = rand::thread_rng();
        let span = days * DAY_MS;
        for i in 0..generations {
            // Squaring skews towards the first clients: a few busy shops, a long tail.
            let u: f64 = rng.gen();
            let client = &ids[((u * u) * ids.len() as f64) as usize % ids.len()];
            let ok = rng.gen_bool(0.95);
            let model = if rng.gen_bool(0.7) { "fal-virtual-try-on" } else { "nano-banana-pro" };
            let duration: u64 = rng.gen_range(3_000..30_000);
            let at = now - rng.gen_range(0..span);
            stmt.execute(params![
                format!("gen_bench{i:015}{}", tryon_edge::domain::ids::random_base62(4).to_lowercase()),
                client,
                model,
                if ok { "success" } else { "error" },
                duration as i64,
                (duration - 150) as i64,
                ok.then(|| format!("https://v3.fal.media/files/bench/{i}.png")),
                (!ok).then_some("FAL failed with HTTP 500: Internal error"),
                at as i64,
            ])
            .map_err(err)?;
        }
    }
    tx.execute_batch(
        "DELETE FROM usage_daily;
         INSERT INTO usage_daily (client_id, day, model, success_count, error_count, duration_ms_sum)
           SELECT client_id, created_at / 86400000, model, SUM(status = 'success'), SUM(status = 'error'), SUM(duration_ms)
           FROM generations GROUP BY 1, 2, 3;
         DELETE FROM usage_monthly;
         INSERT INTO usage_monthly (client_id, month, success_count, error_count)
           SELECT client_id, strftime('%Y-%m', day * 86400, 'unixepoch'), SUM(success_count), SUM(error_count) FROM usage_daily GROUP BY 1, 2;
         DELETE FROM usage_totals_daily;
         INSERT INTO usage_totals_daily (day, success_count, error_count)
           SELECT day, SUM(success_count), SUM(error_count) FROM usage_daily GROUP BY day;",
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(Seeded { clients: seeded })
}

/// Gives `client` a publishable key for pages on `origin`, with browser
/// limits too high to refuse a benchmark; returns the key.
pub fn widget_key(state: &Path, client: &str, origin: &str) -> Result<String, String> {
    let err = |e: rusqlite::Error| e.to_string();
    let db = Connection::open(database_file(state)?).map_err(err)?;
    let id = ClientId::parse(client).ok_or_else(|| format!("{client} is no client id"))?;
    let key = ApiKey::generate(&id, KeyKind::Publishable);
    db.execute(
        "UPDATE clients SET allowed_origins = ?1, widget_rate_limit_per_minute = 100000, shopper_rate_limit_per_minute = 100000, shopper_daily_limit = 100000 WHERE id = ?2",
        params![serde_json::json!([origin]).to_string(), client],
    )
    .map_err(err)?;
    db.execute(
        "INSERT INTO api_keys (id, client_id, key_hash, prefix, created_at, kind, publishable_key) VALUES (?1, ?2, ?3, ?4, ?5, 'publishable', ?6)",
        params![tryon_edge::domain::ids::new_id("key"), client, key.hash().0, key.display_prefix(), super::now_ms() as i64, key.reveal()],
    )
    .map_err(err)?;
    Ok(key.reveal().to_string())
}

pub fn counts(state: &Path) -> Result<(u64, u64), String> {
    let db = Connection::open(database_file(state)?).map_err(|e| e.to_string())?;
    let n = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|v| v as u64).map_err(|e| e.to_string());
    Ok((n("SELECT COUNT(*) FROM clients")?, n("SELECT COUNT(*) FROM generations")?))
}
