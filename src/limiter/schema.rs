//! The SQLite schemas of the limiter objects, versioned in one place. Each
//! object applies, once per start, the steps its storage has not seen yet.
//! Steps are append-only: a deployed step is never edited (objects that ran
//! it keep their tables), a change is a new step.

use worker::SqlStorage;

/// The per-client `RateLimiter`. Step 1 is the schema the first release
/// created with `IF NOT EXISTS`, so objects from before versioning pass it
/// unchanged; step 2 keeps what each reservation is (to record an attempt
/// whose request died) and the client's live jobs.
pub const RATE_LIMITER: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY CHECK (id = 1), tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS committed (month TEXT PRIMARY KEY, count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, month TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, stale INTEGER NOT NULL DEFAULT 0)",
    // Settled reservation ids, so a success is charged once however
    // often it is reported (duplicate webhooks, polling, retries).
    "CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, charged INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS settled_at ON settled (at_ms)",
    // Idempotency keys live here rather than in D1: this object is
    // already on the request's path and is strongly consistent per client.
    "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reservation TEXT, status INTEGER, body TEXT, location TEXT, lock_expires_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires_ms)",
], &[
    "ALTER TABLE reservations ADD COLUMN meta TEXT",
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_expires ON jobs (expires_ms)",
], &[
    // Browser traffic: the widget's rate bucket, and each shopper's usage.
    "CREATE TABLE IF NOT EXISTS widget_bucket (id INTEGER PRIMARY KEY CHECK (id = 1), tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shoppers (id TEXT PRIMARY KEY, day INTEGER NOT NULL, attempts INTEGER NOT NULL, tokens REAL, updated_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS shoppers_day ON shoppers (day)",
], &[
    // Rate buckets as the bucket's own opaque state (`Bucket::stored`), so a
    // new algorithm needs no new columns; the old columns are read until the
    // next write.
    "CREATE TABLE IF NOT EXISTS rate_buckets (name TEXT PRIMARY KEY, state TEXT NOT NULL)",
    "ALTER TABLE shoppers ADD COLUMN bucket TEXT",
]];

/// The `LoginThrottle` objects (one per source, one for all sources).
/// Step 2: attempts are taken (with an id, so a success can give its own
/// back) rather than failures recorded after the fact; the global object
/// keeps when the next attempt from a source that failed may come.
pub const LOGIN_THROTTLE: &[&[&str]] = &[
    &["CREATE TABLE IF NOT EXISTS login_failures (at_ms INTEGER NOT NULL)"],
    &[
        "CREATE TABLE IF NOT EXISTS login_attempts (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO login_attempts (id, at_ms) SELECT 'failure-' || rowid, at_ms FROM login_failures",
        "DROP TABLE login_failures",
        "CREATE TABLE IF NOT EXISTS login_spacing (id INTEGER PRIMARY KEY CHECK (id = 1), next_ms INTEGER NOT NULL)",
    ],
];

#[derive(serde::Deserialize)]
struct Version {
    version: i64,
}

#[derive(serde::Deserialize)]
struct Count {
    n: i64,
}

/// Whether the object has never written anything. Such an object (a forged
/// key naming a client that does not exist, say) is answered from memory
/// and never creates its tables: a request without a valid credential must
/// cost no storage write.
pub fn is_blank(sql: &SqlStorage) -> worker::Result<bool> {
    let count = sql
        .exec("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('schema_version', 'snapshot', 'login_failures')", None)?
        .to_array::<Count>()?;
    Ok(count.first().is_none_or(|c| c.n == 0))
}

/// Brings `sql` up to the last step of `steps`.
pub fn migrate(sql: &SqlStorage, steps: &[&[&str]]) -> worker::Result<()> {
    sql.exec("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)", None)?;
    let current = sql
        .exec("SELECT version FROM schema_version WHERE id = 1", None)?
        .to_array::<Version>()?
        .first()
        .map_or(0, |v| v.version.max(0) as usize);
    for (index, step) in steps.iter().enumerate().skip(current) {
        for ddl in step.iter() {
            sql.exec(ddl, None)?;
        }
        sql.exec(
            "INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            Some(vec![((index + 1) as i64).into()]),
        )?;
    }
    Ok(())
}
