//! Cursor pagination for the list endpoints.

use crate::domain::cursor::{page_size, Cursor};
use crate::error::{ApiError, ApiResult};
use crate::request::query_value;

/// `limit` and `cursor` from the query string.
pub fn page_params(query: &[(String, String)]) -> ApiResult<(u32, Option<Cursor>)> {
    let limit = page_size(query_value(query, "limit"))
        .ok_or_else(|| ApiError::bad_request("invalid_query", "`limit` must be a whole number from 1 to 100"))?;
    let after = match query_value(query, "cursor") {
        None | Some("") => None,
        Some(raw) => Some(
            Cursor::decode(raw)
                .ok_or_else(|| ApiError::bad_request("invalid_cursor", "`cursor` is not a cursor this API returned"))?,
        ),
    };
    Ok((limit, after))
}

/// Lists ask storage for `limit + 1` rows to learn whether another page exists;
/// this keeps `limit` of them and the cursor to the next page, if any.
pub fn split_page<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> (Vec<T>, Option<String>) {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if has_more { rows.last().map(|r| cursor_of(r).encode()) } else { None };
    (rows, next)
}
