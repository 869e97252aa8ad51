//! Status streams of live jobs, held by the client's object: each open
//! stream gets the job's current state when it opens (unless it saw it
//! already), every later change as it happens, a keep-alive comment every
//! 15 s, and ends after the final event or after its time bound.
//!
//! A client that goes away is not noticed here (a disconnect does not reach
//! the object through the calling worker), so streams are dropped by age and
//! by their job ending, never left to accumulate.

use super::jobs::LiveJob;
use crate::domain::result_url::ResultUrls;
use crate::domain::signing::SigningKeys;
use crate::domain::sse;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use worker::{Date, Delay};

const KEEP_ALIVE_MS: u64 = 15_000;

type Chunk = Result<Vec<u8>, worker::Error>;

struct Subscriber {
    job_id: String,
    /// Our public origin, for result links.
    base: String,
    tx: UnboundedSender<Chunk>,
    /// The last version it was sent (its `Last-Event-ID`).
    seen: u64,
    until_ms: u64,
}

/// How events link result images: the object's signing keys and URL lifetime.
pub struct Links {
    pub keys: Option<Rc<SigningKeys>>,
    pub ttl_s: u64,
}

#[derive(Default)]
pub struct Streams {
    open: Rc<RefCell<Vec<Subscriber>>>,
    ticking: Rc<Cell<bool>>,
}

fn event_of(live: &LiveJob, links: &Links, base: &str) -> Vec<u8> {
    let urls = ResultUrls::new(links.keys.as_deref(), base, links.ttl_s, Date::now().as_millis());
    sse::event(live.version, live.job.status.as_str(), &live.job.view(&urls).to_string()).into_bytes()
}

impl Streams {
    /// A new stream of `live`, for at most `max_ms`.
    pub fn open(&self, live: &LiveJob, last_event_id: Option<u64>, max_ms: u64, links: &Links, base: &str) -> UnboundedReceiver<Chunk> {
        let (tx, rx) = unbounded();
        let seen = last_event_id.unwrap_or(0);
        if live.version > seen {
            let _ = tx.unbounded_send(Ok(event_of(live, links, base)));
        }
        if live.job.status.is_finished() {
            return rx; // `tx` drops here: the stream ends after its one event.
        }
        let until_ms = Date::now().as_millis() + max_ms;
        self.open.borrow_mut().push(Subscriber { job_id: live.job.id.clone(), base: base.to_string(), tx, seen: live.version.max(seen), until_ms });
        self.keep_alive();
        rx
    }

    /// Sends `live`'s new state to its streams; ends them if it is final.
    pub fn publish(&self, live: &LiveJob, links: &Links) {
        let finished = live.job.status.is_finished();
        self.open.borrow_mut().retain_mut(|s| {
            if s.job_id != live.job.id {
                return true;
            }
            if s.seen < live.version {
                s.seen = live.version;
                if s.tx.unbounded_send(Ok(event_of(live, links, &s.base))).is_err() {
                    return false;
                }
            }
            !finished
        });
    }

    /// One timer for all streams of the object: keep-alives, and the end of
    /// streams past their bound. It stops when no stream is left.
    fn keep_alive(&self) {
        if self.ticking.replace(true) {
            return;
        }
        let (open, ticking) = (self.open.clone(), self.ticking.clone());
        worker::wasm_bindgen_futures::spawn_local(async move {
            loop {
                Delay::from(Duration::from_millis(KEEP_ALIVE_MS)).await;
                let now = Date::now().as_millis();
                let mut streams = open.borrow_mut();
                streams.retain(|s| s.until_ms > now && s.tx.unbounded_send(Ok(sse::keep_alive().as_bytes().to_vec())).is_ok());
                if streams.is_empty() {
                    ticking.set(false);
                    return;
                }
            }
        });
    }
}
