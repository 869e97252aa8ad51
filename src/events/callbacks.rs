//! Telling a client's back end that its job finished: a signed POST to the
//! client's `webhook_url`, retried, entirely in the background (`waitUntil`)
//! so it never delays FAL's webhook or the shopper.

use crate::domain::callback::{derive_secret, signature};
use crate::domain::job::Job;
use crate::domain::time::to_rfc3339;
use crate::outbound;
use crate::results::links;
use crate::state::Ctx;
use crate::store;
use serde_json::json;
use worker::Date;

/// Three attempts in all.
const BACKOFF_MS: [u64; 2] = [1_000, 4_000];
const TIMEOUT_MS: u64 = 5_000;

pub fn notify_in_background(ctx: &Ctx, job: &Job) {
    let Some(master) = ctx.config.webhook_signing_key.clone() else { return };
    // The view is built now, with our image URL minted for this delivery.
    let data = job.view(&links::urls(ctx));
    let (services, job) = (ctx.services.clone(), job.clone());
    ctx.in_background(async move {
        let (url, version) = match store::clients::callback_target(&services.db, &job.client_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => return worker::console_error!("callback for {}: {e:?}", job.id),
        };
        let secret = derive_secret(master.expose().as_bytes(), &job.client_id, version);
        let body = json!({ "type": "job.completed", "timestamp": to_rfc3339(Date::now().as_millis()), "data": data }).to_string();
        // The same id on every attempt, so the receiver can drop duplicates;
        // a fresh timestamp and signature on each.
        let message_id = format!("msg_{}", job.id);
        let headers = || {
            let timestamp = Date::now().as_millis() / 1000;
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("webhook-id".to_string(), message_id.clone()),
                ("webhook-timestamp".to_string(), timestamp.to_string()),
                ("webhook-signature".to_string(), signature(&secret, &message_id, timestamp, &body)),
            ]
        };
        outbound::deliver(&url, headers, &body, TIMEOUT_MS, &BACKOFF_MS, &format!("callback {message_id}")).await;
    });
}
