//! The delivery log of outbound events (D1 `deliveries` and
//! `delivery_attempts`), and each client's callback health (paused, failing
//! since). Reads of a client's log take the client's id.

use super::{batch, execute, first, rows, statement, Arg};
use crate::args;
use crate::domain::cursor::Cursor;
use crate::domain::event::{DeliveryStatus, EventType};
use crate::domain::ids::ClientId;
use crate::error::ApiResult;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement, D1Result};

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: String,
    pub client_id: String,
    pub destination: String,
    pub event_type: String,
    pub event_id: String,
    pub payload: String,
    pub status: String,
    pub run: u64,
    pub attempts: u64,
    pub target: Option<String>,
    pub last_status_code: Option<u64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    pub delivered_at: Option<u64>,
    pub dead_lettered_at: Option<u64>,
}

impl DeliveryRow {
    pub fn status(&self) -> Option<DeliveryStatus> {
        DeliveryStatus::parse(&self.status)
    }
}

const COLUMNS: &str = "id, client_id, destination, event_type, event_id, payload, status, run, attempts, target, last_status_code, last_error, next_attempt_at, created_at, updated_at, delivered_at, dead_lettered_at";

/// One attempt, as the log shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct AttemptRow {
    pub attempt: u64,
    pub run: u64,
    pub target: String,
    pub status_code: Option<u64>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub attempted_at: u64,
    pub next_attempt_at: Option<u64>,
}

// ---------- enqueueing ----------

/// A new delivery of one event to one receiver.
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub event_type: EventType,
    pub event_id: &'a str,
    pub payload: &'a str,
    pub now: u64,
}

/// What an insert returned: nothing when the event was already enqueued
/// for this receiver (or the client does not want it).
#[derive(Debug, Deserialize)]
pub struct Inserted {
    pub id: String,
    pub run: u64,
    pub status: String,
}

/// Inserts a callback delivery only if the client has a callback URL and
/// wants this event type: the decision is made by the same statement that
/// records it, so enqueueing costs one round trip. A paused client's event
/// is recorded as `paused` and not enqueued.
pub fn insert_callback(db: &D1Database, d: &NewDelivery) -> ApiResult<D1PreparedStatement> {
    statement(
        db,
        &format!(
            "INSERT INTO deliveries ({COLUMNS_FOR_INSERT}, last_error)
             SELECT ?1, c.id, 'callback', ?3, ?4, ?5,
                    CASE WHEN c.callbacks_paused_at IS NULL THEN 'pending' ELSE 'paused' END, ?6, ?6,
                    CASE WHEN c.callbacks_paused_at IS NULL THEN NULL ELSE 'the client''s callbacks are paused' END
             FROM clients c
             WHERE c.id = ?2 AND c.webhook_url IS NOT NULL
               AND (c.webhook_events IS NULL OR EXISTS (SELECT 1 FROM json_each(c.webhook_events) WHERE value = ?3))
             ON CONFLICT (event_id, destination) DO NOTHING
             RETURNING id, run, status"
        ),
        args![d.id, d.client_id, d.event_type.as_str(), d.event_id, d.payload, d.now],
    )
}

/// Inserts a metrics delivery (the operators' receiver: never paused).
pub fn insert_metrics(db: &D1Database, d: &NewDelivery) -> ApiResult<D1PreparedStatement> {
    statement(
        db,
        &format!(
            "INSERT INTO deliveries ({COLUMNS_FOR_INSERT}) VALUES (?1, ?2, 'metrics', ?3, ?4, ?5, 'pending', ?6, ?6)
             ON CONFLICT (event_id, destination) DO NOTHING
             RETURNING id, run, status"
        ),
        args![d.id, d.client_id, d.event_type.as_str(), d.event_id, d.payload, d.now],
    )
}

const COLUMNS_FOR_INSERT: &str = "id, client_id, destination, event_type, event_id, payload, status, created_at, updated_at";

/// Marks deliveries whose queue message could not be sent: nothing will
/// attempt them, so they are failed (and redeliverable) rather than pending forever.
pub async fn mark_unqueued(db: &D1Database, ids: &[String], error: &str, now: u64) -> ApiResult<u64> {
    execute(
        db,
        "UPDATE deliveries SET status = 'failed', last_error = ?2, next_attempt_at = NULL, updated_at = ?3
         WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'",
        args![serde_json::to_string(ids)?, error, now],
    )
    .await
}

// ---------- attempting ----------

/// A delivery with what an attempt needs to know of its client now: the
/// current callback URL and secret version (a shop that fixes its URL during
/// an outage gets the retries there), and whether its callbacks are paused.
#[derive(Debug, Clone)]
pub struct ForAttempt {
    pub delivery: DeliveryRow,
    pub client: CallbackSettings,
}

/// The client's side of a delivery (all `None` if the client is gone).
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackSettings {
    pub webhook_url: Option<String>,
    pub webhook_secret_version: Option<u64>,
    pub callbacks_paused_at: Option<u64>,
    pub callbacks_failing_since: Option<u64>,
}

pub async fn for_attempt(db: &D1Database, id: &str) -> ApiResult<Option<ForAttempt>> {
    let sql = format!(
        "SELECT {}, c.webhook_url, c.webhook_secret_version, c.callbacks_paused_at, c.callbacks_failing_since
         FROM deliveries d LEFT JOIN clients c ON c.id = d.client_id WHERE d.id = ?1",
        prefixed_columns()
    );
    let result = statement(db, &sql, args![id])?.all().await.map_err(super::d1_error)?;
    // The joined row is read twice, as each struct, rather than with
    // `#[serde(flatten)]`, whose buffering deserializer weighs on the wasm.
    let delivery = rows::<DeliveryRow>(&result)?.into_iter().next();
    let client = rows::<CallbackSettings>(&result)?.into_iter().next();
    Ok(delivery.zip(client).map(|(delivery, client)| ForAttempt { delivery, client }))
}

/// How an attempt changes the client's callback health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackHealth {
    /// A 2xx: the endpoint works, whatever failed before.
    Succeeded,
    /// Failing; the first failure since the last success is kept.
    Failing,
    /// Failing for long enough: the client's callbacks are paused now.
    Paused,
}

/// One attempt and its consequences, written in one transaction.
pub struct AttemptRecord<'a> {
    pub delivery_id: &'a str,
    pub client_id: &'a str,
    pub run: u64,
    pub target: &'a str,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: u64,
    pub attempted_at: u64,
    /// The delivery's state after this attempt.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<u64>,
    /// `None` for metrics deliveries.
    pub health: Option<CallbackHealth>,
}

pub async fn record_attempt(db: &D1Database, r: &AttemptRecord<'_>) -> ApiResult<()> {
    let now = r.attempted_at;
    let mut statements = vec![
        // The attempt number counts every attempt of the delivery, over all
        // its runs, so the log reads in order after a redelivery.
        statement(db, "UPDATE deliveries SET attempts = attempts + 1 WHERE id = ?1", args![r.delivery_id])?,
        statement(
            db,
            "INSERT INTO delivery_attempts (delivery_id, attempt, run, target, status_code, error, latency_ms, attempted_at, next_attempt_at)
             VALUES (?1, (SELECT attempts FROM deliveries WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                r.delivery_id, r.run, r.target, r.status_code.map(u32::from), r.error, r.latency_ms, now, r.next_attempt_at
            ],
        )?,
        // A newer run (an admin's redelivery) owns the status; this one only adds its attempt.
        statement(
            db,
            "UPDATE deliveries SET status = ?3, target = ?4, last_status_code = ?5, last_error = ?6, next_attempt_at = ?7,
                    updated_at = ?8, delivered_at = CASE WHEN ?3 = 'delivered' THEN ?8 ELSE delivered_at END
             WHERE id = ?1 AND run = ?2",
            args![
                r.delivery_id, r.run, r.status.as_str(), r.target, r.status_code.map(u32::from), r.error, r.next_attempt_at, now
            ],
        )?,
    ];
    match r.health {
        None => {}
        Some(CallbackHealth::Succeeded) => statements.push(statement(
            db,
            "UPDATE clients SET callbacks_failing_since = NULL WHERE id = ?1 AND callbacks_failing_since IS NOT NULL",
            args![r.client_id],
        )?),
        Some(CallbackHealth::Failing) => statements.push(statement(
            db,
            "UPDATE clients SET callbacks_failing_since = COALESCE(callbacks_failing_since, ?2) WHERE id = ?1",
            args![r.client_id, now],
        )?),
        Some(CallbackHealth::Paused) => statements.push(statement(
            db,
            "UPDATE clients SET callbacks_failing_since = COALESCE(callbacks_failing_since, ?2),
                    callbacks_paused_at = COALESCE(callbacks_paused_at, ?2)
             WHERE id = ?1",
            args![r.client_id, now],
        )?),
    }
    batch(db, statements).await?;
    Ok(())
}

/// Ends a run without an attempt: the client is paused, or there is nowhere
/// to deliver (no callback URL any more, no signing key, a refused URL).
pub async fn settle_without_attempt(
    db: &D1Database,
    id: &str,
    run: u64,
    status: DeliveryStatus,
    reason: &str,
    now: u64,
) -> ApiResult<()> {
    execute(
        db,
        "UPDATE deliveries SET status = ?3, last_error = ?4, next_attempt_at = NULL, updated_at = ?5
         WHERE id = ?1 AND run = ?2",
        args![id, run, status.as_str(), reason, now],
    )
    .await?;
    Ok(())
}

/// The queue gave up on a run (it reached the dead-letter queue): it is
/// failed unless it was delivered after all.
pub async fn dead_lettered(db: &D1Database, id: &str, run: u64, now: u64) -> ApiResult<()> {
    execute(
        db,
        "UPDATE deliveries SET dead_lettered_at = ?3, updated_at = ?3,
                status = CASE WHEN status = 'delivered' THEN status ELSE 'failed' END,
                next_attempt_at = CASE WHEN status = 'delivered' THEN next_attempt_at ELSE NULL END
         WHERE id = ?1 AND run = ?2",
        args![id, run, now],
    )
    .await?;
    Ok(())
}

// ---------- redelivering ----------

/// Starts a new run of a delivery and returns its number: messages of older
/// runs still in the queue will find themselves superseded and stop.
pub async fn begin_run(db: &D1Database, id: &str, now: u64) -> ApiResult<Option<u64>> {
    #[derive(Deserialize)]
    struct Run {
        run: u64,
    }
    let row: Option<Run> = first(
        db,
        "UPDATE deliveries SET run = run + 1, status = 'pending', next_attempt_at = NULL, delivered_at = NULL,
                dead_lettered_at = NULL, last_error = NULL, updated_at = ?2
         WHERE id = ?1 RETURNING run",
        args![id, now],
    )
    .await?;
    Ok(row.map(|r| r.run))
}

// ---------- reading the log ----------

/// A page of one client's log: `callbacks_only` for the shop's own view
/// (metrics forwarding is the operators' business).
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub client: ClientId,
    pub callbacks_only: bool,
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
    pub after: Option<Cursor>,
    /// For a shop's own read: the key it presented must be live.
    pub key_guard: Option<super::KeyGuard>,
}

/// A delivery with its attempts (a JSON array built by the same query).
#[derive(Debug, Clone)]
pub struct ListedDelivery {
    pub delivery: DeliveryRow,
    attempts_log: Option<String>,
}

#[derive(Deserialize)]
struct AttemptsLog {
    attempts_log: Option<String>,
}

/// The deliveries of a list or get statement's result, with their attempts.
pub fn listed(result: &D1Result) -> ApiResult<Vec<ListedDelivery>> {
    let deliveries = rows::<DeliveryRow>(result)?;
    let logs = rows::<AttemptsLog>(result)?;
    Ok(deliveries.into_iter().zip(logs).map(|(delivery, log)| ListedDelivery { delivery, attempts_log: log.attempts_log }).collect())
}

impl ListedDelivery {
    /// The attempts, oldest first.
    pub fn attempts(&self) -> Vec<AttemptRow> {
        let mut attempts: Vec<AttemptRow> =
            self.attempts_log.as_deref().and_then(|raw| serde_json::from_str(raw).ok()).unwrap_or_default();
        attempts.sort_by_key(|a| a.attempt);
        attempts
    }
}

/// A delivery's columns (as `d`) and its attempts as one JSON array, so a
/// page of the log is one query however many attempts it holds.
fn listed_columns() -> String {
    format!(
        "{}, (SELECT json_group_array(json_object('attempt', a.attempt, 'run', a.run, 'target', a.target,
                  'status_code', a.status_code, 'error', a.error, 'latency_ms', a.latency_ms,
                  'attempted_at', a.attempted_at, 'next_attempt_at', a.next_attempt_at))
              FROM delivery_attempts a WHERE a.delivery_id = d.id) AS attempts_log",
        prefixed_columns()
    )
}

fn prefixed_columns() -> String {
    COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
}

pub fn list_statement(db: &D1Database, filter: &ListFilter, limit: u32) -> ApiResult<D1PreparedStatement> {
    let mut conditions = vec!["d.client_id = ?1".to_string()];
    let mut values: Vec<Arg> = args![filter.client.as_str()];
    let mut push = |sql: &str, args: Vec<Arg>| {
        let mut sql = sql.to_string();
        for (i, a) in args.into_iter().enumerate() {
            values.push(a);
            sql = sql.replace(&format!("${}", i + 1), &format!("?{}", values.len()));
        }
        conditions.push(sql);
    };
    if filter.callbacks_only {
        push("d.destination = 'callback'", args![]);
    }
    if let Some(s) = filter.status {
        push("d.status = $1", args![s.as_str()]);
    }
    if let Some(t) = filter.event_type {
        push("d.event_type = $1", args![t.as_str()]);
    }
    if let Some(c) = &filter.after {
        push("(d.created_at < $1 OR (d.created_at = $1 AND d.id < $2))", args![c.created_at, &c.id]);
    }
    if let Some(g) = &filter.key_guard {
        push(super::KeyGuard::CONDITION, g.args(filter.client.as_str()));
    }
    values.push(limit.into());
    let sql = format!(
        "SELECT {} FROM deliveries d WHERE {} ORDER BY d.created_at DESC, d.id DESC LIMIT ?{}",
        listed_columns(),
        conditions.join(" AND "),
        values.len()
    );
    statement(db, &sql, values)
}

pub async fn list(db: &D1Database, filter: &ListFilter, limit: u32) -> ApiResult<Vec<ListedDelivery>> {
    listed(&list_statement(db, filter, limit)?.all().await.map_err(super::d1_error)?)
}

/// One delivery with its attempts, whoever's it is (admin reads).
pub async fn get(db: &D1Database, id: &str) -> ApiResult<Option<ListedDelivery>> {
    let sql = format!("SELECT {} FROM deliveries d WHERE d.id = ?1", listed_columns());
    let result = statement(db, &sql, args![id])?.all().await.map_err(super::d1_error)?;
    Ok(listed(&result)?.into_iter().next())
}

// ---------- the client's callback health ----------

/// Resumes a client's paused callbacks and forgets its failure streak.
/// Returns false if there is no such client.
pub async fn resume_callbacks(db: &D1Database, client: &ClientId, now: u64) -> ApiResult<bool> {
    let changed = execute(
        db,
        "UPDATE clients SET callbacks_paused_at = NULL, callbacks_failing_since = NULL, updated_at = ?2 WHERE id = ?1",
        args![client.as_str(), now],
    )
    .await?;
    Ok(changed > 0)
}

// ---------- retention ----------

/// Deletes deliveries created before `cutoff` with their attempts, in chunks
/// (each chunk one transaction, so no attempt outlives its delivery).
pub async fn delete_older_than(db: &D1Database, cutoff: u64) -> ApiResult<u64> {
    const CHUNK: u64 = 2_000;
    const MAX_CHUNKS: u64 = 20;
    let oldest = "SELECT id FROM deliveries WHERE created_at < ?1 ORDER BY created_at LIMIT ?2";
    let mut deleted = 0;
    for _ in 0..MAX_CHUNKS {
        let results = batch(
            db,
            vec![
                statement(db, &format!("DELETE FROM delivery_attempts WHERE delivery_id IN ({oldest})"), args![cutoff, CHUNK])?,
                statement(db, &format!("DELETE FROM deliveries WHERE id IN ({oldest})"), args![cutoff, CHUNK])?,
            ],
        )
        .await?;
        let n = results
            .get(1)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0) as u64;
        deleted += n;
        if n < CHUNK {
            break;
        }
    }
    Ok(deleted)
}
