//! What development builds tell about themselves on every answer, for the
//! memory measurement (`scripts/bench.sh memory`): the size of the wasm
//! instance's linear memory. It only grows (wasm memory never shrinks), so
//! read after a request it is the high-water mark of everything so far.
//! Never sent outside `ENVIRONMENT=development`.

use worker::js_sys::WebAssembly;
use worker::wasm_bindgen::JsCast;

pub const WASM_MEMORY_HEADER: &str = "x-wasm-memory-bytes";

pub fn wasm_memory_bytes() -> Option<u32> {
    let memory: WebAssembly::Memory = worker::wasm_bindgen::memory().dyn_into().ok()?;
    let buffer: worker::js_sys::ArrayBuffer = memory.buffer().dyn_into().ok()?;
    Some(buffer.byte_length())
}
