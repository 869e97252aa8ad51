//! D1 repositories. Every query that reads a client's data takes the client's
//! id, so one client can never be handed another's rows by accident.

pub mod clients;
pub mod dashboard;
pub mod deliveries;
pub mod generations;
pub mod jobs;
pub mod result_rows;
pub mod results;
pub mod outbox;
pub mod sessions;
pub mod usage;

use crate::error::{ApiError, ApiResult};
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// A bound SQL argument. D1 has no 64-bit integer binding, so integers travel
/// as doubles; every integer we store (times in ms, counts) stays below 2^53.
pub enum Arg {
    Text(String),
    Num(f64),
    Null,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<u64> for Arg {
    fn from(v: u64) -> Self {
        debug_assert!(v < (1 << 53));
        Arg::Num(v as f64)
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Self {
        Arg::Num(v as f64)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Num(if v { 1.0 } else { 0.0 })
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl From<Arg> for JsValue {
    fn from(a: Arg) -> Self {
        match a {
            Arg::Text(s) => JsValue::from_str(&s),
            Arg::Num(n) => JsValue::from_f64(n),
            Arg::Null => JsValue::NULL,
        }
    }
}

#[macro_export]
macro_rules! args {
    ($($x:expr),* $(,)?) => { vec![$($crate::store::Arg::from($x)),*] };
}

pub fn statement(db: &D1Database, sql: &str, args: Vec<Arg>) -> ApiResult<D1PreparedStatement> {
    let values: Vec<JsValue> = args.into_iter().map(JsValue::from).collect();
    Ok(db.prepare(sql).bind(&values)?)
}

pub async fn first<T: DeserializeOwned>(db: &D1Database, sql: &str, args: Vec<Arg>) -> ApiResult<Option<T>> {
    statement(db, sql, args)?.first::<T>(None).await.map_err(d1_error)
}

pub async fn all<T: DeserializeOwned>(db: &D1Database, sql: &str, args: Vec<Arg>) -> ApiResult<Vec<T>> {
    let result = statement(db, sql, args)?.all().await.map_err(d1_error)?;
    result.results::<T>().map_err(d1_error)
}

/// Runs a statement and returns how many rows it changed.
pub async fn execute(db: &D1Database, sql: &str, args: Vec<Arg>) -> ApiResult<u64> {
    let result = statement(db, sql, args)?.run().await.map_err(d1_error)?;
    Ok(result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64)
}

/// Runs statements in one round trip and one transaction.
pub async fn batch(db: &D1Database, statements: Vec<D1PreparedStatement>) -> ApiResult<Vec<worker::D1Result>> {
    db.batch(statements).await.map_err(d1_error)
}

/// `batch` for a fixed number of statements: one result each, by position.
pub async fn batch_of<const N: usize>(db: &D1Database, statements: [D1PreparedStatement; N]) -> ApiResult<[worker::D1Result; N]> {
    let results = batch(db, statements.into()).await?;
    <[worker::D1Result; N]>::try_from(results)
        .map_err(|r| ApiError::Internal(format!("D1 answered {} results for {N} statements", r.len())))
}

/// The rows of one statement's result.
pub fn rows<T: DeserializeOwned>(result: &worker::D1Result) -> ApiResult<Vec<T>> {
    result.results().map_err(d1_error)
}

/// The first row of one statement's result, if any.
pub fn first_row<T: DeserializeOwned>(result: &worker::D1Result) -> ApiResult<Option<T>> {
    Ok(rows(result)?.into_iter().next())
}

/// A key that must be live for a query to read anything: SQLite evaluates
/// the (uncorrelated) check once, before scanning, so a forged key reads no
/// page of another client's rows.
#[derive(Debug, Clone)]
pub struct KeyGuard {
    pub hash: String,
    pub now: u64,
}

impl KeyGuard {
    /// The condition, with `$1` the key's hash, `$2` the client, `$3` now.
    pub const CONDITION: &'static str =
        "EXISTS (SELECT 1 FROM api_keys k WHERE k.key_hash = $1 AND k.client_id = $2 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $3))";

    pub fn args(&self, client: &str) -> Vec<Arg> {
        vec![Arg::from(self.hash.as_str()), Arg::from(client), Arg::from(self.now)]
    }
}

/// The outcome of a write that may collide with an existing row.
pub enum Written {
    Done(Vec<worker::D1Result>),
    /// A UNIQUE or PRIMARY KEY constraint refused it: the row exists.
    Duplicate,
}

/// Runs statements in one transaction, telling a constraint violation (which
/// D1 reports only in its error message) apart from other failures. The one
/// place that reads D1's error text.
pub async fn batch_once(db: &D1Database, statements: Vec<D1PreparedStatement>) -> ApiResult<Written> {
    match db.batch(statements).await {
        Ok(results) => Ok(Written::Done(results)),
        Err(e) if e.to_string().contains("UNIQUE constraint failed") => Ok(Written::Duplicate),
        Err(e) => Err(d1_error(e)),
    }
}

pub fn d1_error(e: worker::Error) -> ApiError {
    ApiError::Internal(format!("D1: {e}"))
}

/// SQLite booleans are 0/1 integers.
pub fn is_true(v: i64) -> bool {
    v != 0
}
