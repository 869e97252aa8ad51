//! D1 repositories. Every query that reads a client's data takes the client's
//! id, so one client can never be handed another's rows by accident.

pub mod clients;
pub mod dashboard;
pub mod generations;
pub mod jobs;
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

pub fn d1_error(e: worker::Error) -> ApiError {
    ApiError::Internal(format!("D1: {e}"))
}

/// SQLite booleans are 0/1 integers.
pub fn is_true(v: i64) -> bool {
    v != 0
}
