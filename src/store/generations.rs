//! Every generation attempt, and the daily rollups kept beside them.

pub use super::KeyGuard;
use super::{batch_once, first, statement, Arg, Written};
use crate::args;
use crate::domain::cursor::Cursor;
use crate::domain::job::{generation_id_of, Job, JobOutcome, ENDPOINT as JOBS_ENDPOINT};
pub use crate::domain::generation::Outcome;
pub use crate::domain::result::ResultStatus;
use crate::domain::ids::ClientId;
use crate::domain::result::has_image;
use crate::domain::result_url::ResultUrls;
use crate::domain::shopper::{Metadata, ShopperId};
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
    /// Who it was for (erased on request), and what the shop attached to it.
    #[serde(default)]
    pub shopper_id: Option<String>,
    /// JSON (see `domain::shopper::Metadata`), or nothing.
    #[serde(default)]
    pub metadata: Option<String>,
    /// Our copy of the output image (see `domain::result`); `image_url` stays
    /// FAL's URL, for operators.
    #[serde(default)]
    pub result_status: Option<ResultStatus>,
    #[serde(default)]
    pub result_content_type: Option<String>,
    #[serde(default)]
    pub result_bytes: Option<u64>,
    /// Why the copy has not been made yet (or never will be).
    #[serde(default)]
    pub result_error: Option<String>,
}

impl GenerationRow {
    /// The row that records how `job` ended.
    pub fn of_job(job: &Job, outcome: &JobOutcome, now: u64) -> Self {
        let (status, image_url, error) = match outcome {
            JobOutcome::Done { image_url, .. } => (Outcome::Success, Some(image_url.clone()), None),
            JobOutcome::Failed { error } => (Outcome::Error, None, Some(error.clone())),
            JobOutcome::Canceled => (Outcome::Canceled, None, Some("canceled by the client".to_string())),
        };
        Self {
            id: generation_id_of(&job.id),
            client_id: job.client_id.clone(),
            model: job.model.clone(),
            status,
            endpoint: JOBS_ENDPOINT.to_string(),
            duration_ms: now.saturating_sub(job.created_at),
            fal_duration_ms: job.fal_start.map(|start| now.saturating_sub(start)),
            image_url,
            error,
            garments_count: job.garments_count,
            cold_start: 0,
            job_id: Some(job.id.clone()),
            created_at: job.created_at,
            shopper_id: job.shopper_id.clone(),
            metadata: job.metadata.to_column(),
            result_status: None,
            result_content_type: None,
            result_bytes: None,
            result_error: None,
        }
    }
}

impl GenerationRow {
    /// How the job this row records ended.
    pub fn outcome_of_job(&self) -> JobOutcome {
        match self.status {
            Outcome::Success => JobOutcome::Done { image_url: self.image_url.clone().unwrap_or_default(), description: None },
            Outcome::Error => JobOutcome::Failed { error: self.error.clone().unwrap_or_default() },
            Outcome::Canceled => JobOutcome::Canceled,
        }
    }
}

/// The row recording how one of `client`'s jobs ended, if it did.
pub async fn get_for_job(db: &D1Database, client: &ClientId, job_id: &str) -> ApiResult<Option<GenerationRow>> {
    first(db, &format!("SELECT {COLUMNS} FROM generations WHERE client_id = ?1 AND id = ?2"), args![client.as_str(), generation_id_of(job_id)]).await
}

impl GenerationRow {
    /// The link to its image: our URL (minted by `urls`), FAL's while ours
    /// cannot be signed, or none when there is no image (any more).
    pub fn image_link(&self, urls: &ResultUrls) -> Option<String> {
        has_image(self.status, self.result_status).then(|| urls.link(&self.client_id, &self.id, self.image_url.as_deref())).flatten()
    }

    /// What a client sees of its own generation: in its history and in the
    /// `generation.completed` callback.
    pub fn public_view(&self, urls: &ResultUrls) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "endpoint": self.endpoint,
            "duration_ms": self.duration_ms,
            "fal_duration_ms": self.fal_duration_ms,
            "image_url": self.image_link(urls),
            "image_status": self.result_status.map(|s| s.as_str()),
            "image_content_type": self.result_content_type,
            "image_bytes": self.result_bytes,
            "error": self.error,
            "garments_count": self.garments_count,
            "job_id": self.job_id,
            "created_at": crate::domain::time::to_rfc3339(self.created_at),
            "shopper_id": self.shopper_id,
            "metadata": Metadata::from_column(self.metadata.as_deref()),
        })
    }
}

pub const COLUMNS: &str = "id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at, shopper_id, metadata, result_status, result_content_type, result_bytes, result_error";

/// The generation row and its rollups (per client and day, per client and
/// month, per day), written in one round trip and one transaction.
pub fn record_statements(db: &D1Database, g: &GenerationRow) -> ApiResult<Vec<worker::D1PreparedStatement>> {
    let insert = statement(
        db,
        &format!("INSERT INTO generations ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"),
        args![
            &g.id, &g.client_id, &g.model, g.status.as_str(), &g.endpoint, g.duration_ms, g.fal_duration_ms,
            g.image_url.clone(), g.error.clone(), g.garments_count, g.cold_start == 1, g.job_id.clone(), g.created_at,
            g.shopper_id.clone(), g.metadata.clone(),
            g.result_status.map(ResultStatus::as_str), g.result_content_type.clone(), g.result_bytes, g.result_error.clone()
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

/// One client's history (or one of its shopper's), newest first, for a
/// request holding `guard`.
pub fn list_for_client(
    db: &D1Database,
    client: &ClientId,
    shopper: Option<&ShopperId>,
    guard: KeyGuard,
    limit: u32,
    after: Option<&Cursor>,
) -> ApiResult<D1PreparedStatement> {
    let filter = Filter {
        client_id: Some(client.as_str().to_string()),
        shopper_id: shopper.map(|s| s.as_str().to_string()),
        after: after.cloned(),
        key_guard: Some(guard),
        ..Filter::default()
    };
    list_statement(db, &filter, limit)
}

/// One shopper's history, newest first (the caller was admitted for them).
pub async fn list_for_shopper(db: &D1Database, client: &ClientId, shopper: &ShopperId, limit: u32, after: Option<&Cursor>) -> ApiResult<Vec<GenerationRow>> {
    let filter = Filter {
        client_id: Some(client.as_str().to_string()),
        shopper_id: Some(shopper.as_str().to_string()),
        after: after.cloned(),
        ..Filter::default()
    };
    list(db, &filter, limit).await
}

/// Erases what identifies a shopper in a client's generations — the
/// shopper id, the shop's metadata, the result image — keeping the rows, so
/// usage and invoices still count them. Returns the ids of the rows erased.
pub async fn erase_shopper(db: &D1Database, client: &ClientId, shopper: &ShopperId) -> ApiResult<Vec<String>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let erased: Vec<Id> = super::all(
        db,
        "UPDATE generations SET shopper_id = NULL, metadata = NULL, image_url = NULL,
                result_status = CASE WHEN result_status IS NULL THEN NULL ELSE 'deleted' END
         WHERE client_id = ?1 AND shopper_id = ?2 RETURNING id",
        args![client.as_str(), shopper.as_str()],
    )
    .await?;
    Ok(erased.into_iter().map(|r| r.id).collect())
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub client_id: Option<String>,
    pub shopper_id: Option<String>,
    pub status: Option<Outcome>,
    pub model: Option<String>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub after: Option<Cursor>,
    pub key_guard: Option<KeyGuard>,
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
    if let Some(s) = &filter.shopper_id {
        push("shopper_id = $1", args![s]);
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
    if let (Some(g), Some(c)) = (&filter.key_guard, &filter.client_id) {
        push(KeyGuard::CONDITION, g.args(c));
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
/// totals and invoices still count them. A row whose image is still in the
/// bucket (or being copied there) waits until the image is deleted: the row
/// is how the image is found. Returns how many rows went.
pub async fn delete_older_than(db: &D1Database, cutoff: u64) -> ApiResult<u64> {
    const CHUNK: u64 = 5_000;
    const MAX_CHUNKS: u64 = 20;
    let mut deleted = 0;
    for _ in 0..MAX_CHUNKS {
        let n = super::execute(
            db,
            "DELETE FROM generations WHERE id IN (SELECT id FROM generations WHERE created_at < ?1
               AND (result_status IS NULL OR result_status NOT IN ('pending', 'stored')) ORDER BY created_at LIMIT ?2)",
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
