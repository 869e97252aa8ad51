//! The `RateLimiter` Durable Object, one per client (named by client id):
//! load the state, apply a pure decision to it, persist what changed. The
//! decisions live beside it (`admission`, `bucket`, `quota`, `idempotency`);
//! D1 stays the system of record and the object rebuilds its copy of the
//! client from it when its own storage is empty.

use super::admission::LimiterState;
use super::bucket::Bucket;
use super::idempotency::{check_idempotency, lock_ttl_ms, IdempotencyCheck, IdempotencyRecord, IDEMPOTENCY_RETENTION_MS};
use super::protocol::{AdmitRequest, Decision, IdempotencyCompletion, Refusal, SettleRequest, StoredResponse, SyncRequest};
use super::quota::{charge_once, Quota, Reservation, Settlement};
use super::schema;
use super::snapshot::ClientSnapshot;
use crate::domain::ids::ClientId;
use crate::store;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

/// When D1 cannot be read, the alarm tries again this much later.
const RECONCILE_RETRY_MS: i64 = 60_000;
/// Settled ids are needed for as long as a job can still report (an hour);
/// two days of memory is plenty.
const SETTLED_MEMORY_MS: u64 = 2 * 86_400_000;

#[durable_object]
pub struct RateLimiter {
    state: State,
    env: Env,
    cache: RefCell<Option<LimiterState>>,
    /// The alarm this object last set, so the hot path does not ask storage.
    alarm_at: Cell<Option<u64>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        if let Err(e) = schema::migrate(&state.storage().sql(), schema::RATE_LIMITER) {
            worker::console_error!("limiter schema: {e}");
        }
        Self { state, env, cache: RefCell::new(None), alarm_at: Cell::new(None) }
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
            _ => Response::error("unknown limiter call", 404),
        }
    }

    /// Settles reservations a worker never settled (it crashed, or its
    /// settle call was lost): charged if D1 has their successful generation,
    /// released otherwise.
    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let now = Date::now().as_millis();
        let due = self.load()?.quota.due_for_reconciliation(now);
        let mut retry_later = false;
        if !due.is_empty() {
            let db = crate::bindings::database(&self.env)?;
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
        self.exec("DELETE FROM settled WHERE at_ms < ?", vec![millis(now.saturating_sub(SETTLED_MEMORY_MS))])?;
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
            .map(|b| Bucket { tokens: b.tokens, updated_ms: b.updated_ms });
        let committed = self
            .rows::<CommittedRow>("SELECT month, count FROM committed", vec![])?
            .into_iter()
            .map(|r| (r.month, r.count))
            .collect();
        let reservations = self
            .rows::<ReservationRow>("SELECT id, month, created_ms, expires_ms, stale FROM reservations", vec![])?
            .into_iter()
            .map(|r| Reservation { id: r.id, month: r.month, created_ms: r.created_ms, expires_ms: r.expires_ms, stale: r.stale != 0 })
            .collect();
        let state = LimiterState { snapshot, bucket, quota: Quota { committed, reservations } };
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
                self.exec("INSERT OR REPLACE INTO bucket (id, tokens, updated_ms) VALUES (1, ?, ?)", vec![b.tokens.into(), millis(b.updated_ms)])?;
            }
        }
        let (was, now) = (&before.quota, &after.quota);
        for (month, count) in &now.committed {
            if was.committed.get(month) != Some(count) {
                self.exec("INSERT OR REPLACE INTO committed (month, count) VALUES (?, ?)", vec![month.as_str().into(), (*count as i64).into()])?;
            }
        }
        for r in &was.reservations {
            if !now.reservations.iter().any(|a| a.id == r.id) {
                self.exec("DELETE FROM reservations WHERE id = ?", vec![r.id.as_str().into()])?;
            }
        }
        for r in &now.reservations {
            if was.reservations.iter().find(|b| b.id == r.id) != Some(r) {
                self.exec(
                    "INSERT OR REPLACE INTO reservations (id, month, created_ms, expires_ms, stale) VALUES (?, ?, ?, ?, ?)",
                    vec![r.id.as_str().into(), r.month.as_str().into(), millis(r.created_ms), millis(r.expires_ms), i64::from(r.stale).into()],
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
        self.exec("DELETE FROM idempotency WHERE expires_ms <= ?", vec![millis(now)])?;
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
                    let reservation = admit.reserve.as_ref().map(|r| r.id.as_str());
                    let lock_ms = lock_ttl_ms(admit.reserve.as_ref().map(|r| r.ttl_ms));
                    self.exec(
                        "INSERT OR REPLACE INTO idempotency (key, fingerprint, reservation, status, body, location, lock_expires_ms, expires_ms) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)",
                        vec![
                            claim.key.as_str().into(),
                            claim.fingerprint.as_str().into(),
                            reservation.into(),
                            millis(now + lock_ms),
                            millis(now + IDEMPOTENCY_RETENTION_MS),
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
        let charged = self.update(|s| s.settle(id, charge_once(already_charged, outcome), now))?;
        self.exec(
            "INSERT INTO settled (id, charged, at_ms) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET charged = MAX(charged, excluded.charged)",
            vec![id.into(), i64::from(charged).into(), millis(now)],
        )
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
        if !state.snapshot.as_ref().is_none_or(|s| s.is_stale(now)) {
            return Ok(());
        }
        let Some(client) = self.state.id().name().and_then(|name| ClientId::parse(&name)) else {
            return Ok(());
        };
        let db = crate::bindings::database(&self.env)?;
        let limits = store::clients::limits_of(&db, &client, now).await.map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        let used_this_month = limits.used_this_month;
        let snapshot = ClientSnapshot::from_store(client.as_str(), limits, now);
        let month = crate::domain::time::month_key(now);
        self.update(|s| {
            // First sight of this client (or lost storage): D1's count of this
            // month's successes is where the quota stands.
            if s.snapshot.is_none() && !s.quota.committed.contains_key(&month) && used_this_month > 0 {
                s.quota.committed.insert(month, used_this_month);
            }
            s.apply_snapshot(snapshot);
        })
    }

    /// Keeps one alarm set for the earliest reservation expiry (at least
    /// `min_offset_ms` away). An alarm already due earlier is left alone, so
    /// most requests touch no alarm at all.
    async fn schedule_alarm(&self, min_offset_ms: i64) -> Result<()> {
        let Some(next) = self.load()?.quota.next_expiry() else {
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
}

/// Times and counts stay far below 2^63; SQLite stores them as integers.
fn millis(ms: u64) -> SqlStorageValue {
    (ms as i64).into()
}

/// The call's JSON body: read as text and parsed here, which is much cheaper
/// than building a JS object and walking it from wasm.
pub(super) async fn body<T: DeserializeOwned>(req: &mut Request) -> Result<T> {
    serde_json::from_str(&req.text().await?).map_err(|e| worker::Error::RustError(format!("limiter call body: {e}")))
}
