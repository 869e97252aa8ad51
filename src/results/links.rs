//! Links to result images in what clients and admins read: our signed URLs,
//! minted fresh for each read (see `domain::result_url`).

use crate::domain::result::has_image;
use crate::domain::result_url::ResultUrls;
use crate::state::Ctx;
use crate::store::generations::GenerationRow;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this isolate already said that it cannot sign.
static TOLD_UNSIGNED: AtomicBool = AtomicBool::new(false);

/// The minter for this request: its clock, our public origin, the URL lifetime.
pub fn urls(ctx: &Ctx) -> ResultUrls<'_> {
    let keys = ctx.config.signing_keys.as_deref();
    if keys.is_none() && !TOLD_UNSIGNED.swap(true, Ordering::Relaxed) {
        worker::console_warn!("SIGNING_KEYS is not set: result links point at FAL's URLs, which stop working when FAL deletes its files");
    }
    ResultUrls::new(keys, ctx.public_base(), ctx.config.result_url_ttl_s, ctx.now)
}

/// The image link of a recorded generation, if it has an image.
pub fn of_row(urls: &ResultUrls, row: &GenerationRow) -> Option<String> {
    has_image(row.status, row.result_status).then(|| urls.link(&row.client_id, &row.id, row.image_url.as_deref())).flatten()
}
