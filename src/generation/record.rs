//! Recording an attempt: the generation row and its rollups in one D1 batch,
//! retried, and announced to the metrics back end.

use crate::events;
use crate::state::Ctx;
use crate::store::generations::{record, GenerationRow, Recorded};

const ATTEMPTS: u32 = 3;

/// Records the attempt, retrying a failed write. If D1 stays down, the
/// shopper still gets the image; the full row goes to the logs so it can be
/// replayed. Returns `None` only then.
pub async fn record_or_log(ctx: &Ctx, row: &GenerationRow) -> Option<Recorded> {
    for attempt in 0..ATTEMPTS {
        match record(&ctx.db, row).await {
            Ok(Recorded::New) => {
                events::generation_recorded(ctx, row);
                return Some(Recorded::New);
            }
            // A retry finding the row: the previous attempt committed but its answer was lost.
            Ok(Recorded::AlreadyRecorded) if attempt > 0 => {
                events::generation_recorded(ctx, row);
                return Some(Recorded::New);
            }
            Ok(Recorded::AlreadyRecorded) => return Some(Recorded::AlreadyRecorded),
            Err(e) => worker::console_warn!("recording generation {} failed (attempt {}): {:?}", row.id, attempt + 1, e),
        }
    }
    worker::console_error!("UNRECORDED generation: {}", serde_json::to_string(row).unwrap_or_default());
    events::generation_recorded(ctx, row);
    None
}
