//! Reading a body under a byte budget. A body without `Content-Length`
//! (chunked) has no size until it has been read, so reading it whole and
//! measuring afterwards lets anyone make the worker hold 128 MB of memory
//! before any check runs. These read chunk by chunk through the runtime's
//! stream reader, counting, and stop (cancelling the stream) at the cap.

use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader};

#[derive(Debug, PartialEq, Eq)]
pub enum Capped {
    Body(Vec<u8>),
    /// More than the cap arrived; reading stopped there.
    TooLarge,
}

/// What to do with the rest of a stream that passed its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Cancel it: an answer we fetched, whose connection we close.
    Cancel,
    /// Leave it unread: a request body, which the runtime discards after our
    /// answer (cancelling it mid-upload makes some proxies, wrangler dev's
    /// among them, drop the answer too).
    Abandon,
}

/// Reads `stream` (absent: an empty body) until it ends or passes `max_bytes`.
pub async fn read_stream(stream: Option<ReadableStream>, max_bytes: usize, overflow: Overflow) -> Result<Capped, String> {
    let Some(stream) = stream else { return Ok(Capped::Body(Vec::new())) };
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(describe)?;
        let done = Reflect::get(&step, &JsValue::from_str("done")).map_err(describe)?.as_bool().unwrap_or(true);
        if done {
            return Ok(Capped::Body(out));
        }
        let value = Reflect::get(&step, &JsValue::from_str("value")).map_err(describe)?;
        let chunk: Uint8Array = match value.dyn_into() {
            Ok(chunk) => chunk,
            Err(_) => return Err("the body stream yielded something other than bytes".into()),
        };
        let len = chunk.length() as usize;
        if !fits(out.len(), len, max_bytes) {
            // The rest is never buffered either way.
            if overflow == Overflow::Cancel {
                let _ = reader.cancel();
            } else {
                reader.release_lock();
            }
            return Ok(Capped::TooLarge);
        }
        let start = out.len();
        out.resize(start + len, 0);
        if let Some(slot) = out.get_mut(start..) {
            chunk.copy_to(slot);
        }
    }
}

/// Whether `more` bytes can join `held` without passing `max`.
pub fn fits(held: usize, more: usize, max: usize) -> bool {
    held.checked_add(more).is_some_and(|total| total <= max)
}

fn describe(e: JsValue) -> String {
    e.as_string()
        .or_else(|| Reflect::get(&e, &JsValue::from_str("message")).ok().and_then(|m| m.as_string()))
        .unwrap_or_else(|| "the body could not be read".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_exactly_its_figure() {
        assert!(fits(0, 10, 10));
        assert!(!fits(5, 6, 10));
        assert!(!fits(usize::MAX, 1, usize::MAX));
    }
}
