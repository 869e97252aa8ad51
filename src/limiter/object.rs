//! The `RateLimiter` Durable Object: one per client (named by client id), and
//! one per admin-login source (named `login:<ip>`, plus `login:*` for all).
//! It keeps `policy::LimiterState` in memory and in its SQLite storage, so
//! limits survive eviction and restarts; D1 stays the system of record and
//! the object rebuilds its copy from it when its own storage is empty.

use super::policy::{
    check_idempotency, login_allowed, AdmitRequest, ClientSnapshot, Decision, IdempotencyCheck, IdempotencyRecord,
    LimiterState, Refusal, Reservation, Settlement, StoredResponse, IDEMPOTENCY_RETENTION_MS,
};
use super::protocol::{IdempotencyCompletion, LoginReply, LoginRequest, SettleRequest, SyncRequest};
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
    /// The alarm this object last set, so the hot path does not ask storage.
    alarm_at: std::cell::Cell<Option<u64>>,
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
            // Settled reservation ids, so a success is charged once however
            // often it is reported (duplicate webhooks, polling, retries).
            "CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, charged INTEGER NOT NULL, at_ms INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS settled_at ON settled (at_ms)",
            // Idempotency keys live here rather than in D1: this object is
            // already on the request's path and is strongly consistent per client.
            "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reservation TEXT, status INTEGER, body TEXT, location TEXT, lock_expires_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires_ms)",
        ] {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("limiter schema: {e}");
            }
        }
        Self { state, env, cache: RefCell::new(None), alarm_at: std::cell::Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/admit" => {
                let admit: AdmitRequest = body(&mut req).await?;
                self.ensure_fresh(admit.now).await?;
                let decision = self.admit(&admit)?;
                self.schedule_alarm(0).await?;
                Response::from_json(&decision)
            }
            "/settle" => {
                let settle: SettleRequest = body(&mut req).await?;
                if let Some((id, outcome)) = &settle.reservation {
                    self.settle(id, *outcome, settle.now)?;
                }
                if let Some(done) = &settle.idempotency {
                    self.complete_idempotency(done)?;
                }
                Response::from_json(&serde_json::json!({ "settled": true }))
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
        self.alarm_at.set(None);
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
                self.settle(&reservation.id, outcome, now)?;
                // A request that died holding an idempotency key gives it up.
                self.exec("DELETE FROM idempotency WHERE reservation = ? AND status IS NULL", vec![reservation.id.as_str().into()])?;
            }
        }
        self.forget_old_settlements(now)?;
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

#[derive(Deserialize)]
struct SettledRow {
    charged: i64,
}

#[derive(Deserialize)]
struct IdempotencyRow {
    fingerprint: String,
    status: Option<u16>,
    body: Option<String>,
    location: Option<String>,
    lock_expires_ms: u64,
    expires_ms: u64,
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

    /// The decision, honouring an idempotency key once the key, status and
    /// origin have passed: a finished request is replayed, a running one or a
    /// reused key with another request is refused, a new one is admitted and
    /// the key remembered.
    fn admit(&self, admit: &AdmitRequest) -> Result<Decision> {
        let Some(claim) = &admit.idempotency else {
            return self.update(|s| s.admit(admit));
        };
        let state = self.load()?;
        if let Err(refusal) = state.check_access(admit) {
            return Ok(Decision::Refused { refusal, limits: None });
        }
        let now = admit.now;
        self.exec("DELETE FROM idempotency WHERE expires_ms <= ?", vec![(now as i64).into()])?;
        let existing = self
            .rows::<IdempotencyRow>(
                "SELECT fingerprint, status, body, location, lock_expires_ms, expires_ms FROM idempotency WHERE key = ?",
                vec![claim.key.as_str().into()],
            )?
            .into_iter()
            .next()
            .map(|r| IdempotencyRecord {
                fingerprint: r.fingerprint,
                response: r.status.map(|status| StoredResponse { status, body: r.body.unwrap_or_default(), location: r.location }),
                lock_expires_ms: r.lock_expires_ms,
                expires_ms: r.expires_ms,
            });
        let limits = state.status_now(now);
        Ok(match check_idempotency(existing.as_ref(), &claim.fingerprint, now) {
            IdempotencyCheck::Replay(response) => Decision::Replay { response, limits },
            IdempotencyCheck::Mismatch => Decision::Refused { refusal: Refusal::IdempotencyMismatch, limits },
            IdempotencyCheck::InProgress => Decision::Refused { refusal: Refusal::IdempotencyInProgress, limits },
            IdempotencyCheck::Proceed => {
                let decision = self.update(|s| s.admit(admit))?;
                if matches!(decision, Decision::Admitted(_)) {
                    let (reservation, ttl) = admit.reserve.as_ref().map_or((None, 60_000), |r| (Some(r.id.as_str()), r.ttl_ms));
                    self.exec(
                        "INSERT OR REPLACE INTO idempotency (key, fingerprint, reservation, status, body, location, lock_expires_ms, expires_ms) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)",
                        vec![
                            claim.key.as_str().into(),
                            claim.fingerprint.as_str().into(),
                            reservation.into(),
                            ((now + ttl) as i64).into(),
                            ((now + IDEMPOTENCY_RETENTION_MS) as i64).into(),
                        ],
                    )?;
                }
                decision
            }
        })
    }

    /// Charges a success once per id, however many times it is reported.
    fn settle(&self, id: &str, outcome: Settlement, now: u64) -> Result<()> {
        let already_charged = self
            .rows::<SettledRow>("SELECT charged FROM settled WHERE id = ?", vec![id.into()])?
            .first()
            .is_some_and(|r| r.charged != 0);
        let effective = if already_charged { Settlement::Released } else { outcome };
        let charged = self.update(|s| s.settle(id, effective, now))?;
        self.exec(
            "INSERT INTO settled (id, charged, at_ms) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET charged = MAX(charged, excluded.charged)",
            vec![id.into(), i64::from(charged).into(), (now as i64).into()],
        )?;
        Ok(())
    }

    /// Settled ids are needed for as long as a job can still report: an hour.
    /// Two days of memory is plenty; the alarm clears older ones.
    fn forget_old_settlements(&self, now: u64) -> Result<()> {
        self.exec("DELETE FROM settled WHERE at_ms < ?", vec![(now.saturating_sub(2 * 86_400_000) as i64).into()])?;
        Ok(())
    }

    fn complete_idempotency(&self, done: &IdempotencyCompletion) -> Result<()> {
        match &done.response {
            Some(r) => self.exec(
                "UPDATE idempotency SET status = ?, body = ?, location = ? WHERE key = ?",
                vec![(r.status as i64).into(), r.body.as_str().into(), r.location.clone().into(), done.key.as_str().into()],
            ),
            None => self.exec("DELETE FROM idempotency WHERE key = ?", vec![done.key.as_str().into()]),
        }
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

    /// Keeps one alarm set for the earliest reservation expiry (at least
    /// `min_offset_ms` away). An alarm already due earlier is left alone, so
    /// most requests touch no alarm at all.
    async fn schedule_alarm(&self, min_offset_ms: i64) -> Result<()> {
        let Some(next) = self.load()?.next_expiry() else {
            return Ok(());
        };
        let now = Date::now().as_millis() as i64;
        let offset = (next as i64 - now).max(min_offset_ms);
        let target = (now + offset) as u64;
        if self.alarm_at.get().is_some_and(|t| t <= target) {
            return Ok(());
        }
        let storage = self.state.storage();
        // After a restart the memory is empty: storage knows what is set.
        if self.alarm_at.get().is_none() {
            if let Some(t) = storage.get_alarm().await? {
                self.alarm_at.set(Some(t as u64));
                if t as u64 <= target {
                    return Ok(());
                }
            }
        }
        storage.set_alarm(offset).await?;
        self.alarm_at.set(Some(target));
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

/// The call's JSON body: read as text and parsed here, which is much cheaper
/// than building a JS object and walking it from wasm.
async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    serde_json::from_str(&req.text().await?).map_err(|e| worker::Error::RustError(format!("limiter call body: {e}")))
}
