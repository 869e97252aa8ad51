//! The `RateLimiter` Durable Object: one per client (named by client id), and
//! one per admin-login source (named `login:<ip>`, plus `login:*` for all).
//! It keeps `policy::LimiterState` in memory and in its SQLite storage, so
//! limits survive eviction and restarts; D1 stays the system of record and
//! the object rebuilds its copy from it when its own storage is empty.

use super::policy::{login_allowed, AdmitRequest, ClientSnapshot, LimiterState, Reservation, Settlement};
use super::protocol::{LoginReply, LoginRequest, SettleRequest, SyncRequest};
use crate::domain::ids::ClientId;
use crate::store;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

/// When D1 cannot be read, the alarm tries again this much later.
const RECONCILE_RETRY_MS: i64 = 60_000;

#[durable_object]
pub struct RateLimiter {
    state: State,
    env: Env,
    cache: RefCell<Option<LimiterState>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS bucket (id INTEGER PRIMARY KEY CHECK (id = 1), tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS committed (month TEXT PRIMARY KEY, count INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, month TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, stale INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS login_failures (at_ms INTEGER NOT NULL)",
        ] {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("limiter schema: {e}");
            }
        }
        Self { state, env, cache: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/admit" => {
                let admit: AdmitRequest = body(&mut req).await?;
                self.ensure_fresh(admit.now).await?;
                let decision = self.update(|s| s.admit(&admit))?;
                self.schedule_alarm(0).await?;
                Response::from_json(&decision)
            }
            "/settle" => {
                let settle: SettleRequest = body(&mut req).await?;
                let settled = self.update(|s| s.settle(&settle.id, settle.outcome))?;
                Response::from_json(&serde_json::json!({ "settled": settled }))
            }
            "/sync" => {
                let sync: SyncRequest = body(&mut req).await?;
                self.update(|s| s.apply_snapshot(sync.snapshot))?;
                Response::from_json(&serde_json::json!({ "synced": true }))
            }
            "/login" => {
                let login: LoginRequest = body(&mut req).await?;
                Response::from_json(&self.login(&login)?)
            }
            _ => Response::error("unknown limiter call", 404),
        }
    }

    /// Settles reservations a worker never settled (it crashed, or its
    /// settle call was lost): charged if D1 has their successful generation,
    /// released otherwise.
    async fn alarm(&self) -> Result<Response> {
        let now = Date::now().as_millis();
        let due = self.load()?.due_for_reconciliation(now);
        let mut retry_later = false;
        if !due.is_empty() {
            let db = self.env.d1("DB")?;
            for reservation in due {
                // A reservation outlives its request (its TTL is longer than the
                // FAL timeout), so by now the generation is recorded or never will be.
                let outcome = match store::generations::outcome_of(&db, &reservation.id).await {
                    Ok(Some(true)) => Settlement::Success,
                    Ok(Some(false) | None) => Settlement::Released,
                    Err(e) => {
                        worker::console_warn!("limiter reconciliation: {e:?}");
                        retry_later = true;
                        continue;
                    }
                };
                self.update(|s| s.settle(&reservation.id, outcome))?;
            }
        }
        self.schedule_alarm(if retry_later { RECONCILE_RETRY_MS } else { 0 }).await?;
        Response::ok("reconciled")
    }
}

#[derive(Deserialize)]
struct SnapshotRow {
    body: String,
}

#[derive(Deserialize)]
struct BucketRow {
    tokens: f64,
    updated_ms: u64,
}

#[derive(Deserialize)]
struct CommittedRow {
    month: String,
    count: u64,
}

#[derive(Deserialize)]
struct ReservationRow {
    id: String,
    month: String,
    created_ms: u64,
    expires_ms: u64,
    stale: i64,
}

#[derive(Deserialize)]
struct FailureRow {
    at_ms: u64,
}

impl RateLimiter {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn rows<T: DeserializeOwned>(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Vec<T>> {
        self.sql().exec(query, Some(args))?.to_array()
    }

    fn exec(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<()> {
        self.sql().exec(query, Some(args)).map(|_| ())
    }

    /// The state, from memory, or from this object's storage on first use.
    fn load(&self) -> Result<LimiterState> {
        if let Some(state) = self.cache.borrow().as_ref() {
            return Ok(state.clone());
        }
        let snapshot = self
            .rows::<SnapshotRow>("SELECT body FROM snapshot WHERE id = 1", vec![])?
            .into_iter()
            .next()
            .and_then(|r| serde_json::from_str::<ClientSnapshot>(&r.body).ok());
        let bucket = self
            .rows::<BucketRow>("SELECT tokens, updated_ms FROM bucket WHERE id = 1", vec![])?
            .into_iter()
            .next()
            .map(|b| super::policy::Bucket { tokens: b.tokens, updated_ms: b.updated_ms });
        let committed: BTreeMap<String, u64> = self
            .rows::<CommittedRow>("SELECT month, count FROM committed", vec![])?
            .into_iter()
            .map(|r| (r.month, r.count))
            .collect();
        let reservations = self
            .rows::<ReservationRow>("SELECT id, month, created_ms, expires_ms, stale FROM reservations", vec![])?
            .into_iter()
            .map(|r| Reservation { id: r.id, month: r.month, created_ms: r.created_ms, expires_ms: r.expires_ms, stale: r.stale != 0 })
            .collect();
        let state = LimiterState { snapshot, bucket, committed, reservations };
        *self.cache.borrow_mut() = Some(state.clone());
        Ok(state)
    }

    /// Applies `change` and writes what it changed to storage. Synchronous:
    /// nothing else runs in this object between the read and the writes.
    fn update<T>(&self, change: impl FnOnce(&mut LimiterState) -> T) -> Result<T> {
        let before = self.load()?;
        let mut after = before.clone();
        let out = change(&mut after);
        self.persist(&before, &after)?;
        *self.cache.borrow_mut() = Some(after);
        Ok(out)
    }

    fn persist(&self, before: &LimiterState, after: &LimiterState) -> Result<()> {
        if before.snapshot != after.snapshot {
            if let Some(s) = &after.snapshot {
                let body = serde_json::to_string(s).map_err(|e| worker::Error::RustError(e.to_string()))?;
                self.exec("INSERT OR REPLACE INTO snapshot (id, body) VALUES (1, ?)", vec![body.into()])?;
            }
        }
        if before.bucket != after.bucket {
            if let Some(b) = after.bucket {
                self.exec(
                    "INSERT OR REPLACE INTO bucket (id, tokens, updated_ms) VALUES (1, ?, ?)",
                    vec![b.tokens.into(), (b.updated_ms as i64).into()],
                )?;
            }
        }
        for (month, count) in &after.committed {
            if before.committed.get(month) != Some(count) {
                self.exec(
                    "INSERT OR REPLACE INTO committed (month, count) VALUES (?, ?)",
                    vec![month.as_str().into(), (*count as i64).into()],
                )?;
            }
        }
        for r in &before.reservations {
            if !after.reservations.iter().any(|a| a.id == r.id) {
                self.exec("DELETE FROM reservations WHERE id = ?", vec![r.id.as_str().into()])?;
            }
        }
        for r in &after.reservations {
            if before.reservations.iter().find(|b| b.id == r.id) != Some(r) {
                self.exec(
                    "INSERT OR REPLACE INTO reservations (id, month, created_ms, expires_ms, stale) VALUES (?, ?, ?, ?, ?)",
                    vec![
                        r.id.as_str().into(),
                        r.month.as_str().into(),
                        (r.created_ms as i64).into(),
                        (r.expires_ms as i64).into(),
                        i64::from(r.stale).into(),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Loads the client from D1 when this object has never seen it, or when
    /// its copy is older than the safety-net age.
    async fn ensure_fresh(&self, now: u64) -> Result<()> {
        let state = self.load()?;
        let needs_load = state.snapshot.as_ref().is_none_or(|s| s.is_stale(now));
        if !needs_load {
            return Ok(());
        }
        let Some(name) = self.state.id().name() else {
            return Ok(());
        };
        let Some(client) = ClientId::parse(&name) else {
            return Ok(());
        };
        let db = self.env.d1("DB")?;
        let (snapshot, used_this_month) = store::clients::load_snapshot(&db, &client, now)
            .await
            .map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let month = crate::domain::time::month_key(now);
        self.update(|s| {
            // First sight of this client (or lost storage): D1's count of this
            // month's successes is where the quota stands.
            if s.snapshot.is_none() && !s.committed.contains_key(&month) && used_this_month > 0 {
                s.committed.insert(month, used_this_month);
            }
            s.apply_snapshot(snapshot);
        })
    }

    /// Keeps one alarm set for the earliest reservation expiry (at least `min_offset_ms` away).
    async fn schedule_alarm(&self, min_offset_ms: i64) -> Result<()> {
        let Some(next) = self.load()?.next_expiry() else {
            return Ok(());
        };
        let storage = self.state.storage();
        let now = Date::now().as_millis() as i64;
        let offset = (next as i64 - now).max(min_offset_ms);
        let current = storage.get_alarm().await?;
        if current.is_none_or(|t| t > now + offset) {
            storage.set_alarm(offset).await?;
        }
        Ok(())
    }

    fn login(&self, req: &LoginRequest) -> Result<LoginReply> {
        let failures: Vec<u64> = self
            .rows::<FailureRow>("SELECT at_ms FROM login_failures WHERE at_ms > ?", vec![(req.now.saturating_sub(req.window_ms) as i64).into()])?
            .into_iter()
            .map(|r| r.at_ms)
            .collect();
        if req.record_failure {
            self.exec("DELETE FROM login_failures WHERE at_ms <= ?", vec![(req.now.saturating_sub(req.window_ms) as i64).into()])?;
            self.exec("INSERT INTO login_failures (at_ms) VALUES (?)", vec![(req.now as i64).into()])?;
            return Ok(LoginReply { allowed: true, retry_after_s: 0 });
        }
        Ok(match login_allowed(&failures, req.now, req.window_ms, req.max_failures) {
            Ok(()) => LoginReply { allowed: true, retry_after_s: 0 },
            Err(retry_after_s) => LoginReply { allowed: false, retry_after_s },
        })
    }
}

async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    req.json().await
}
