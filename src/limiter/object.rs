//! The `RateLimiter` Durable Object, one per client (named by client id):
//! load the state, apply a pure decision to it, persist what changed. The
//! decisions live beside it (`admission`, `bucket`, `quota`, `idempotency`,
//! `jobs`); D1 stays the system of record and the object rebuilds its copy
//! of the client from it when its own storage is empty. It also keeps the
//! client's live jobs, whose changes it pushes to status streams (`streams`).

use super::admission::LimiterState;
use super::bucket::Bucket;
use super::idempotency::{check_idempotency, lock_ttl_ms, IdempotencyCheck, IdempotencyRecord, IDEMPOTENCY_RETENTION_MS};
use super::jobs::{JobState, LiveJob};
use super::protocol::{
    AdmitRequest, Decision, IdempotencyCompletion, JobCreate, JobFinish, JobFinished, JobGet, JobProgress, JobRead, JobSubscribe,
    Refusal, SettleRequest, ShopperErase, StoredResponse, SyncRequest, FOLLOW_HEADER,
};
use super::quota::{charge_once, Quota, Reservation, ReservationMeta, Settlement};
use super::schema;
use super::snapshot::ClientSnapshot;
use super::streams::{Links, Streams};
use super::widget::ShopperUsage;
use crate::domain::time::DAY_MS;
use crate::domain::ids::ClientId;
use crate::domain::job::{generation_id_of, JobOutcome};
use crate::store;
use crate::store::generations::{GenerationRow, Outcome};
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
    /// Whether the tables exist (`None`: not looked at yet). Created on the
    /// first write; an object that only ever refuses never touches storage.
    schema_ready: Cell<Option<bool>>,
    streams: Streams,
    /// How stream events link result images, from the worker's settings.
    links: Links,
}

impl DurableObject for RateLimiter {
    fn new(state: State, env: Env) -> Self {
        // Settings are read once per object; a bad setting only costs the links.
        let links = match crate::config::Config::from_env(&env) {
            Ok(config) => Links { keys: config.signing_keys.clone(), ttl_s: config.result_url_ttl_s },
            Err(_) => Links { keys: None, ttl_s: 0 },
        };
        Self { state, env, cache: RefCell::new(None), alarm_at: Cell::new(None), schema_ready: Cell::new(None), streams: Streams::default(), links }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/admit" => {
                let admit: AdmitRequest = body(&mut req).await?;
                self.ensure_fresh(admit.now).await?;
                let mut decision = self.admit(&admit)?;
                if let (Decision::Admitted(admission), Some(read)) = (&mut decision, &admit.job) {
                    admission.job = self.read_job(read, admit.now)?;
                }
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
            "/jobs/create" => {
                let create: JobCreate = body(&mut req).await?;
                let live = LiveJob::new(create.job, create.ttl_ms);
                self.put_job(&live)?;
                self.schedule_alarm(0).await?;
                Response::from_json(&live.state(false))
            }
            "/jobs/get" => {
                let get: JobGet = body(&mut req).await?;
                Response::from_json(&self.job(&get.id)?.map(|j| j.state(false)))
            }
            "/jobs/progress" => {
                let progress: JobProgress = body(&mut req).await?;
                let state = self.change_job(&progress.id, |live| {
                    live.renew_follow_lease(progress.now);
                    live.progress(progress.status, progress.queue_position)
                })?;
                Response::from_json(&state)
            }
            "/jobs/finish" => {
                let finish: JobFinish = body(&mut req).await?;
                Response::from_json(&self.finish_job(&finish)?)
            }
            "/shoppers/erase" => {
                let erase: ShopperErase = body(&mut req).await?;
                Response::from_json(&self.erase_shopper(&erase.shopper_id)?)
            }
            "/jobs/subscribe" => {
                let subscribe: JobSubscribe = body(&mut req).await?;
                self.subscribe(&subscribe)
            }
            _ => Response::error("unknown limiter call", 404),
        }
    }

    /// Settles reservations a worker never settled (it crashed, or its
    /// settle call was lost): charged if D1 has their successful generation,
    /// released otherwise — and an attempt that D1 has no row for at all
    /// gets one, so every attempt is recorded. Forgets expired jobs.
    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let now = Date::now().as_millis();
        let due = self.load()?.quota.due_for_reconciliation(now);
        let mut retry_later = false;
        if !due.is_empty() {
            let db = crate::bindings::database(&self.env)?;
            for reservation in due {
                match self.reconcile(&db, &reservation, now).await {
                    Ok(outcome) => self.settle(&reservation.id, outcome, now)?,
                    Err(e) => {
                        worker::console_warn!("limiter reconciliation: {e:?}");
                        retry_later = true;
                        continue;
                    }
                }
                // A request that died holding an idempotency key gives it up.
                self.exec("DELETE FROM idempotency WHERE reservation = ? AND status IS NULL", vec![reservation.id.as_str().into()])?;
            }
        }
        if self.storage_ready()? {
            self.exec("DELETE FROM settled WHERE at_ms < ?", vec![millis(now.saturating_sub(SETTLED_MEMORY_MS))])?;
            // Yesterday's shoppers have nothing left to count.
            self.exec("DELETE FROM shoppers WHERE day < ?", vec![millis(now / DAY_MS)])?;
            if let Err(e) = self.forget_expired_jobs(now).await {
                worker::console_warn!("expiring jobs: {e:?}");
                retry_later = true;
            }
        }
        self.schedule_alarm(if retry_later { RECONCILE_RETRY_MS } else { 0 }).await?;
        Response::ok("reconciled")
    }
}

/// The names of the client's rate buckets in `rate_buckets`.
const API_BUCKET: &str = "api";
const WIDGET_BUCKET: &str = "widget";

#[derive(Deserialize)]
struct SnapshotRow {
    body: String,
}

#[derive(Deserialize)]
struct BucketRow {
    state: String,
}

#[derive(Deserialize)]
struct LegacyBucketRow {
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
    meta: Option<String>,
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

#[derive(Deserialize)]
struct ShopperRow {
    day: u64,
    attempts: u64,
    tokens: Option<f64>,
    updated_ms: Option<u64>,
    bucket: Option<String>,
}

#[derive(Deserialize)]
struct JobRow {
    body: String,
}

#[derive(Deserialize)]
struct ExpiryRow {
    expires_ms: u64,
}

impl RateLimiter {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    /// Whether this object has stored anything: looked at once, on the first
    /// storage access; an object with tables is brought up to date then.
    fn storage_ready(&self) -> Result<bool> {
        if let Some(ready) = self.schema_ready.get() {
            return Ok(ready);
        }
        let sql = self.sql();
        let ready = !schema::is_blank(&sql)?;
        if ready {
            schema::migrate(&sql, schema::RATE_LIMITER)?;
        }
        self.schema_ready.set(Some(ready));
        Ok(ready)
    }

    fn rows<T: DeserializeOwned>(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<Vec<T>> {
        if !self.storage_ready()? {
            return Ok(Vec::new());
        }
        self.sql().exec(query, Some(args))?.to_array()
    }

    /// Every write goes through here: the first one creates the tables.
    fn exec(&self, query: &str, args: Vec<SqlStorageValue>) -> Result<()> {
        if !self.storage_ready()? {
            schema::migrate(&self.sql(), schema::RATE_LIMITER)?;
            self.schema_ready.set(Some(true));
        }
        self.sql().exec(query, Some(args)).map(|_| ())
    }

    /// A rate bucket as stored, or as an object from before `rate_buckets`
    /// kept it (in `legacy_table`'s columns).
    fn stored_bucket(&self, name: &str, legacy_table: &str) -> Result<Option<Bucket>> {
        let stored = self.rows::<BucketRow>("SELECT state FROM rate_buckets WHERE name = ?", vec![name.into()])?;
        if let Some(row) = stored.into_iter().next() {
            return Ok(Bucket::from_stored(&row.state));
        }
        let legacy = self.rows::<LegacyBucketRow>(&format!("SELECT tokens, updated_ms FROM {legacy_table} WHERE id = 1"), vec![])?;
        Ok(legacy.into_iter().next().map(|b| Bucket::from_columns(b.tokens, b.updated_ms)))
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
        let bucket = self.stored_bucket(API_BUCKET, "bucket")?;
        let widget_bucket = self.stored_bucket(WIDGET_BUCKET, "widget_bucket")?;
        let committed = self
            .rows::<CommittedRow>("SELECT month, count FROM committed", vec![])?
            .into_iter()
            .map(|r| (r.month, r.count))
            .collect();
        let reservations = self
            .rows::<ReservationRow>("SELECT id, month, created_ms, expires_ms, stale, meta FROM reservations", vec![])?
            .into_iter()
            .map(|r| Reservation {
                id: r.id,
                month: r.month,
                created_ms: r.created_ms,
                expires_ms: r.expires_ms,
                stale: r.stale != 0,
                meta: r.meta.and_then(|m| serde_json::from_str(&m).ok()),
            })
            .collect();
        let state = LimiterState { snapshot, bucket, widget_bucket, quota: Quota { committed, reservations } };
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
        // A client D1 does not know is kept in memory only: forged keys naming
        // made-up clients must not grow storage.
        if let Some(s) = after.snapshot.as_ref().filter(|s| s.exists && before.snapshot.as_ref() != Some(s)) {
            let body = serde_json::to_string(s).map_err(|e| worker::Error::RustError(e.to_string()))?;
            self.exec("INSERT OR REPLACE INTO snapshot (id, body) VALUES (1, ?)", vec![body.into()])?;
        }
        for (name, was, now) in [(API_BUCKET, before.bucket, after.bucket), (WIDGET_BUCKET, before.widget_bucket, after.widget_bucket)] {
            if let (Some(b), true) = (now, was != now) {
                self.exec("INSERT OR REPLACE INTO rate_buckets (name, state) VALUES (?, ?)", vec![name.into(), b.stored().into()])?;
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
                let meta = r.meta.as_ref().and_then(|m| serde_json::to_string(m).ok());
                self.exec(
                    "INSERT OR REPLACE INTO reservations (id, month, created_ms, expires_ms, stale, meta) VALUES (?, ?, ?, ?, ?, ?)",
                    vec![r.id.as_str().into(), r.month.as_str().into(), millis(r.created_ms), millis(r.expires_ms), i64::from(r.stale).into(), meta.into()],
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
            return self.admit_counting_shopper(admit);
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
                let decision = self.admit_counting_shopper(admit)?;
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

    /// The decision, with the shopper's usage loaded and stored around it when
    /// a browser request reserves a generation.
    fn admit_counting_shopper(&self, admit: &AdmitRequest) -> Result<Decision> {
        let shopper = admit.shopper_id.as_deref().filter(|_| admit.reserve.is_some());
        let Some(shopper) = shopper else {
            return self.update(|s| s.admit(admit, &mut ShopperUsage::default()));
        };
        let before = self.shopper_usage(shopper)?;
        let mut usage = before.clone();
        let decision = self.update(|s| s.admit(admit, &mut usage))?;
        if usage != before {
            let bucket = usage.bucket.map(|b| b.stored());
            self.exec(
                "INSERT OR REPLACE INTO shoppers (id, day, attempts, bucket) VALUES (?, ?, ?, ?)",
                vec![shopper.into(), millis(usage.day), millis(usage.attempts), bucket.into()],
            )?;
        }
        Ok(decision)
    }

    fn shopper_usage(&self, shopper: &str) -> Result<ShopperUsage> {
        Ok(self
            .rows::<ShopperRow>("SELECT day, attempts, tokens, updated_ms, bucket FROM shoppers WHERE id = ?", vec![shopper.into()])?
            .into_iter()
            .next()
            .map(|r| ShopperUsage {
                day: r.day,
                attempts: r.attempts,
                bucket: match r.bucket {
                    Some(state) => Bucket::from_stored(&state),
                    None => r.tokens.zip(r.updated_ms).map(|(tokens, updated_ms)| Bucket::from_columns(tokens, updated_ms)),
                },
            })
            .unwrap_or_default())
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

    /// How an expired reservation ends: from its D1 row; or, when D1 has
    /// none, by writing one — unless it is a job still alive here, which may
    /// yet finish (a success that arrives later is still charged once).
    async fn reconcile(&self, db: &worker::D1Database, reservation: &Reservation, now: u64) -> crate::error::ApiResult<Settlement> {
        // A reservation outlives its request (its TTL is longer than the FAL
        // timeout), so by now the generation is recorded or never will be.
        match store::generations::outcome_of(db, &reservation.id).await? {
            Some(true) => return Ok(Settlement::Success),
            Some(false) => return Ok(Settlement::Released),
            None => {}
        }
        let alive = self.job(&reservation.id).ok().flatten().is_some_and(|j| !j.job.status.is_finished());
        if let (Some(meta), false) = (reservation.meta.as_ref().filter(|m| now >= m.deadline_ms), alive) {
            let row = abandoned_row(self.client_id().as_deref().unwrap_or_default(), reservation, meta, now);
            store::generations::record(db, &row).await?;
        }
        Ok(Settlement::Released)
    }

    fn client_id(&self) -> Option<String> {
        self.state.id().name()
    }

    /// Loads the client from D1 when this object has never seen it, or when
    /// its copy is older than the safety-net age. An object just started asks
    /// D1 before its own storage: for a client D1 does not know (a forged key
    /// naming a made-up client), storage is never touched at all.
    async fn ensure_fresh(&self, now: u64) -> Result<()> {
        let cold = self.cache.borrow().is_none();
        if !cold && !self.load()?.snapshot.as_ref().is_none_or(|s| s.is_stale(now)) {
            return Ok(());
        }
        let Some(client) = self.client_id().and_then(|name| ClientId::parse(&name)) else {
            return Ok(());
        };
        let db = crate::bindings::database(&self.env)?;
        let limits = store::clients::limits_for_object(&db, &client, now).await.map_err(|e| worker::Error::RustError(format!("{e:?}")))?;
        if cold && limits.row.is_none() && self.cache.borrow().is_none() {
            let missing = ClientSnapshot::missing(client.as_str(), now);
            *self.cache.borrow_mut() = Some(LimiterState { snapshot: Some(missing), ..LimiterState::default() });
            return Ok(());
        }
        let used_this_month = limits.used_this_month;
        let snapshot = ClientSnapshot::from_store(client.as_str(), limits, now);
        let month = crate::domain::time::month_key(now);
        self.update(|s| {
            // First sight of this client (or lost storage): D1's count of this
            // month's successes is where the quota stands.
            if s.snapshot.is_none() && snapshot.exists && !s.quota.committed.contains_key(&month) && used_this_month > 0 {
                s.quota.committed.insert(month, used_this_month);
            }
            s.apply_snapshot(snapshot);
        })
    }

    /// Keeps one alarm set for the earliest reservation or job expiry (at
    /// least `min_offset_ms` away). An alarm already due earlier is left
    /// alone, so most requests touch no alarm at all.
    async fn schedule_alarm(&self, min_offset_ms: i64) -> Result<()> {
        let next_reservation = self.load()?.quota.next_expiry();
        // Jobs are only looked for in storage already open: an object that
        // has touched no storage has none.
        let next_job = match self.schema_ready.get() {
            Some(true) => self
                .rows::<ExpiryRow>("SELECT MIN(expires_ms) AS expires_ms FROM jobs WHERE expires_ms IS NOT NULL", vec![])
                .ok()
                .and_then(|r| r.first().map(|e| e.expires_ms)),
            _ => None,
        };
        let next = match (next_reservation, next_job) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return Ok(()),
            },
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

    // ---- live jobs ----

    /// Deletes the shopper's live jobs and counters; returns the jobs' ids.
    fn erase_shopper(&self, shopper: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct IdRow {
            id: String,
        }
        let ids: Vec<String> = self
            .rows::<IdRow>("SELECT id FROM jobs WHERE json_extract(body, '$.job.shopper_id') = ?", vec![shopper.into()])?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if self.storage_ready()? {
            self.exec("DELETE FROM jobs WHERE json_extract(body, '$.job.shopper_id') = ?", vec![shopper.into()])?;
            self.exec("DELETE FROM shoppers WHERE id = ?", vec![shopper.into()])?;
        }
        Ok(ids)
    }

    /// Jobs past their lifetime are forgotten; one that never ended is
    /// recorded as failed first (unless D1 already has its row), so that
    /// every attempt is a row.
    async fn forget_expired_jobs(&self, now: u64) -> crate::error::ApiResult<()> {
        let expired: Vec<LiveJob> = self
            .rows::<JobRow>("SELECT body FROM jobs WHERE expires_ms <= ?", vec![millis(now)])?
            .into_iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect();
        if expired.iter().any(|j| !j.job.status.is_finished()) {
            let db = crate::bindings::database(&self.env)?;
            for live in expired.iter().filter(|j| !j.job.status.is_finished()) {
                let outcome = JobOutcome::Failed { error: "no result from FAL within the job's lifetime".into() };
                store::generations::record(&db, &GenerationRow::of_job(&live.job, &outcome, now)).await?;
                self.settle(&live.job.id, Settlement::Released, now)?;
            }
        }
        self.exec("DELETE FROM jobs WHERE expires_ms <= ?", vec![millis(now)])?;
        Ok(())
    }

    fn job(&self, id: &str) -> Result<Option<LiveJob>> {
        Ok(self
            .rows::<JobRow>("SELECT body FROM jobs WHERE id = ?", vec![id.into()])?
            .into_iter()
            .next()
            .and_then(|r| serde_json::from_str(&r.body).ok()))
    }

    fn put_job(&self, live: &LiveJob) -> Result<()> {
        let body = serde_json::to_string(live).map_err(|e| worker::Error::RustError(e.to_string()))?;
        self.exec(
            "INSERT OR REPLACE INTO jobs (id, body, expires_ms) VALUES (?, ?, ?)",
            vec![live.job.id.as_str().into(), body.into(), millis(live.expires_ms)],
        )
    }

    /// Applies `change` to the job; persists it and tells its streams when
    /// the change is visible. `None` when the object does not have the job.
    fn change_job(&self, id: &str, change: impl FnOnce(&mut LiveJob) -> bool) -> Result<Option<JobState>> {
        let Some(mut live) = self.job(id)? else { return Ok(None) };
        let visible = change(&mut live);
        self.put_job(&live)?;
        if visible {
            self.streams.publish(&live, &self.links);
        }
        Ok(Some(live.state(false)))
    }

    /// The job for a reader admitted with its request, choosing it to ask FAL
    /// when the job is due for that and nobody is following FAL's stream.
    fn read_job(&self, read: &JobRead, now: u64) -> Result<Option<JobState>> {
        let Some(mut live) = self.job(&read.id)?.filter(|j| j.expires_ms > now) else { return Ok(None) };
        let poll = live.follow_until <= now && live.take_poll_lease(now, read.poll_after_ms);
        if poll {
            self.put_job(&live)?;
        }
        Ok(Some(live.state(poll)))
    }

    /// Ends the job (once) and settles its reservation, in one call.
    fn finish_job(&self, finish: &JobFinish) -> Result<JobFinished> {
        let mut ended_now = false;
        let job = self.change_job(&finish.id, |live| {
            ended_now = live.finish(&finish.outcome, finish.now);
            ended_now
        })?;
        let outcome = match &finish.outcome {
            JobOutcome::Done { .. } => Outcome::Success,
            JobOutcome::Failed { .. } => Outcome::Error,
            JobOutcome::Canceled => Outcome::Canceled,
        };
        // Settling is charge-once per id, so repeating it is harmless; the
        // object settles even a job it no longer has (created before it kept jobs).
        self.settle(&finish.id, outcome.into(), finish.now)?;
        Ok(JobFinished { job, ended_now })
    }

    /// A status stream of the job: its current state at once (if newer than
    /// what the subscriber saw), then every change, until it ends.
    fn subscribe(&self, subscribe: &JobSubscribe) -> Result<Response> {
        let Some(mut live) = self.job(&subscribe.id)? else {
            return Response::error("no such job", 404);
        };
        let follow = live.take_follow_lease(subscribe.now);
        if follow {
            self.put_job(&live)?;
        }
        let stream = self.streams.open(&live, subscribe.last_event_id, subscribe.max_ms, &self.links, &subscribe.base);
        let mut response = Response::from_stream(stream)?;
        let headers = response.headers_mut();
        headers.set("content-type", "text/event-stream; charset=utf-8")?;
        headers.set(FOLLOW_HEADER, if follow { "1" } else { "0" })?;
        Ok(response)
    }
}

/// The row of an attempt whose request died before recording it.
fn abandoned_row(client_id: &str, reservation: &Reservation, meta: &ReservationMeta, now: u64) -> GenerationRow {
    let (id, job_id) = if meta.job { (generation_id_of(&reservation.id), Some(reservation.id.clone())) } else { (reservation.id.clone(), None) };
    GenerationRow {
        id,
        client_id: client_id.to_string(),
        model: meta.model.clone(),
        status: Outcome::Error,
        endpoint: meta.endpoint.clone(),
        duration_ms: now.saturating_sub(reservation.created_ms),
        fal_duration_ms: None,
        image_url: None,
        error: Some("the request ended before the attempt was recorded (the client disconnected or the worker stopped)".into()),
        garments_count: meta.garments_count,
        cold_start: 0,
        job_id,
        created_at: reservation.created_ms,
        shopper_id: None,
        metadata: None,
        result_status: None,
        result_content_type: None,
        result_bytes: None,
        result_error: None,
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
