//! Telling a client's back end that its job finished: a signed POST to the
//! client's `webhook_url`, retried, entirely in the background (`waitUntil`)
//! so it never delays FAL's webhook or the shopper.

use crate::domain::callback::{derive_secret, signature};
use crate::domain::job::Job;
use crate::domain::time::to_rfc3339;
use crate::http::Ctx;
use crate::outbound;
use crate::store;
use serde_json::json;
use std::time::Duration;
use worker::{Date, Delay, Method};

const ATTEMPTS: usize = 3;
const BACKOFF_MS: [u64; 2] = [1_000, 4_000];
const TIMEOUT_MS: u64 = 5_000;

pub fn notify_in_background(ctx: &Ctx, job: &Job) {
    let Some(master) = ctx.config.webhook_signing_key.clone() else { return };
    let (env, job) = (ctx.env.clone(), job.clone());
    ctx.wait.wait_until(async move {
        let target = match env.d1("DB") {
            Ok(db) => store::clients::callback_target(&db, &job.client_id).await,
            Err(e) => return worker::console_error!("callback for {}: no D1 binding: {e}", job.id),
        };
        let (url, version) = match target {
            Ok(Some(t)) => t,
            Ok(None) => return,
            Err(e) => return worker::console_error!("callback for {}: {e:?}", job.id),
        };
        let secret = derive_secret(master.expose().as_bytes(), &job.client_id, version);
        let body = json!({ "type": "job.completed", "timestamp": to_rfc3339(Date::now().as_millis()), "data": crate::jobs::view(&job) }).to_string();
        // The same id on every attempt, so the receiver can drop duplicates.
        let message_id = format!("msg_{}", job.id);
        for attempt in 0..ATTEMPTS {
            let timestamp = (Date::now().as_millis() / 1000).to_string();
            let signed = signature(&secret, &message_id, timestamp.parse().unwrap_or(0), &body);
            let headers = [
                ("content-type", "application/json"),
                ("webhook-id", message_id.as_str()),
                ("webhook-timestamp", timestamp.as_str()),
                ("webhook-signature", signed.as_str()),
            ];
            match outbound::send(Method::Post, &url, &headers, Some(body.clone()), TIMEOUT_MS).await {
                Ok((status, _)) if (200..300).contains(&status) => return,
                Ok((status, _)) => worker::console_warn!("callback {message_id} attempt {}: HTTP {status}", attempt + 1),
                Err(e) => worker::console_warn!("callback {message_id} attempt {}: {e:?}", attempt + 1),
            }
            if let Some(wait) = BACKOFF_MS.get(attempt) {
                Delay::from(Duration::from_millis(*wait)).await;
            }
        }
        worker::console_error!("callback {message_id} to the client's webhook_url failed {ATTEMPTS} times; giving up");
    });
}
