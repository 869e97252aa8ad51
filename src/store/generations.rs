//! Every generation attempt, and the daily rollups kept beside them.

use super::{batch_once, first, statement, Arg, Written};
use crate::args;
use crate::domain::cursor::Cursor;
pub use crate::domain::generation::Outcome;
use crate::domain::ids::ClientId;
use crate::domain::time::{day_number, month_key};
use crate::error::ApiResult;
use serde::{Deserialize, Serialize};
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerationRow {
    pub id: String,
    pub client_id: String,
    pub model: String,
    pub status: Outcome,
    pub endpoint: String,
    pub duration_ms: u64,
    pub fal_duration_ms: Option<u64>,
    pub image_url: Option<String>,
    pub error: Option<String>,
    pub garments_count: u64,
    pub cold_start: i64,
    pub job_id: Option<String>,
    pub created_at: u64,
}

impl GenerationRow {
    /// What a client sees of its own generation: in its history and in the
    /// `generation.completed` callback.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "endpoint": self.endpoint,
            "duration_ms": self.duration_ms,
            "fal_duration_ms": self.fal_duration_ms,
            "image_url": self.image_url,
            "error": self.error,
            "garments_count": self.garments_count,
            "job_id": self.job_id,
            "created_at": crate::domain::time::to_rfc3339(self.created_at),
        })
    }
}

pub const COLUMNS: &str = "id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at";

/// The generation row and its rollups (per client and day, per client and
/// month, per day), written in one round trip and one transaction.
pub fn record_statements(db: &D1Database, g: &GenerationRow) -> ApiResult<Vec<worker::D1PreparedStatement>> {
    let insert = statement(
        db,
        &format!("INSERT INTO generations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
        args![
            &g.id, &g.client_id, &g.model, g.status.as_str(), &g.endpoint, g.duration_ms, g.fal_duration_ms,
            g.image_url.clone(), g.error.clone(), g.garments_count, g.cold_start == 1, g.job_id.clone(), g.created_at
        ],
    )?;
    let (success, error) = match g.status {
        Outcome::Success => (1u64, 0u64),
        Outcome::Error => (0, 1),
        Outcome::Canceled => (0, 0),
    };
    let rollup = statement(
        db,
        "INSERT INTO usage_daily (client_id, day, model, success_count, error_count, duration_ms_sum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (client_id, day, model) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count,
           duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum",
        args![&g.client_id, day_number(g.created_at), &g.model, success, error, g.duration_ms],
    )?;
    let monthly = statement(
        db,
        "INSERT INTO usage_monthly (client_id, month, success_count, error_count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id, month) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count",
        args![&g.client_id, month_key(g.created_at), success, error],
    )?;
    let totals = statement(
        db,
        "INSERT INTO usage_totals_daily (day, success_count, error_count) VALUES (?1, ?2, ?3)
         ON CONFLICT (day) DO UPDATE SET
           success_count = success_count + excluded.success_count,
           error_count = error_count + excluded.error_count",
        args![day_number(g.created_at), success, error],
    )?;
    Ok(vec![insert, rollup, monthly, totals])
}

/// Whether recording wrote the row, or found it already there (its id is
/// taken: an earlier attempt committed, or another caller ended the job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadyRecorded,
}

pub async fn record(db: &D1Database, g: &GenerationRow) -> ApiResult<Recorded> {
    Ok(match batch_once(db, record_statements(db, g)?).await? {
        Written::Done(_) => Recorded::New,
        Written::Duplicate => Recorded::AlreadyRecorded,
    })
}

/// One client's history, newest first.
pub fn list_for_client(db: &D1Database, client: &ClientId, limit: u32, after: Option<&Cursor>) -> ApiResult<D1PreparedStatement> {
    let filter = Filter { client_id: Some(client.as_str().to_string()), after: after.cloned(), ..Filter::default() };
    list_statement(db, &filter, limit)
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub client_id: Option<String>,
    pub status: Option<Outcome>,
    pub model: Option<String>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub after: Option<Cursor>,
}

pub async fn list(db: &D1Database, filter: &Filter, limit: u32) -> ApiResult<Vec<GenerationRow>> {
    let result = list_statement(db, filter, limit)?.all().await.map_err(super::d1_error)?;
    result.results().map_err(super::d1_error)
}

pub fn list_statement(db: &D1Database, filter: &Filter, limit: u32) -> ApiResult<D1PreparedStatement> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Arg> = Vec::new();
    let mut push = |sql: &str, args: Vec<Arg>| {
        let mut sql = sql.to_string();
        for (i, a) in args.into_iter().enumerate() {
            values.push(a);
            sql = sql.replace(&format!("${}", i + 1), &format!("?{}", values.len()));
        }
        conditions.push(sql);
    };
    if let Some(c) = &filter.client_id {
        push("client_id = $1", args![c]);
    }
    if let Some(s) = filter.status {
        push("status = $1", args![s.as_str()]);
    }
    if let Some(m) = &filter.model {
        push("model = $1", args![m]);
    }
    if let Some(from) = filter.from_ms {
        push("created_at >= $1", args![from]);
    }
    if let Some(to) = filter.to_ms {
        push("created_at < $1", args![to]);
    }
    if let Some(c) = &filter.after {
        push("(created_at < $1 OR (created_at = $1 AND id < $2))", args![c.created_at, &c.id]);
    }
    values.push(limit.into());
    let where_clause = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    let sql = format!(
        "SELECT {COLUMNS} FROM generations {where_clause} ORDER BY created_at DESC, id DESC LIMIT ?{}",
        values.len()
    );
    statement(db, &sql, values)
}

#[derive(Deserialize)]
struct StatusRow {
    status: Outcome,
}

/// Whether the generation recorded under `id` (a generation id, or the job it
/// belongs to) succeeded; `None` when nothing was recorded.
pub async fn outcome_of(db: &D1Database, id: &str) -> ApiResult<Option<bool>> {
    let row: Option<StatusRow> =
        first(db, "SELECT status FROM generations WHERE id = ?1 OR job_id = ?1 LIMIT 1", args![id]).await?;
    Ok(row.map(|r| r.status == Outcome::Success))
}

/// Deletes generation rows created before `cutoff`, in chunks so that no
/// single statement holds the database for long; the daily rollups stay, so
/// totals and invoices still count them. Returns how many rows went.
pub async fn delete_older_than(db: &D1Database, cutoff: u64) -> ApiResult<u64> {
    const CHUNK: u64 = 5_000;
    const MAX_CHUNKS: u64 = 20;
    let mut deleted = 0;
    for _ in 0..MAX_CHUNKS {
        let n = super::execute(
            db,
            "DELETE FROM generations WHERE id IN (SELECT id FROM generations WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
            args![cutoff, CHUNK],
        )
        .await?;
        deleted += n;
        if n < CHUNK {
            break;
        }
    }
    Ok(deleted)
}
