//! The body both generation routes take, read and checked before any binding
//! is touched (a malformed body costs nothing), with the reservation and the
//! idempotency claim it brings to the limiter.

use super::idempotency;
use crate::domain::generation::GenerationRequest;
use crate::domain::ids::new_id;
use crate::domain::shopper::ShopperId;
use crate::error::ApiResult;
use crate::limiter::protocol::{IdempotencyClaim, ReserveRequest};
use crate::limiter::quota::ReservationMeta;
use crate::request::read_json_body;
use crate::state::Ctx;
use worker::{Date, Request};

pub struct GenerationInput {
    pub request: GenerationRequest,
    pub claim: Option<IdempotencyClaim>,
    /// The id the generation (or job) will have; also the reservation's id.
    pub id: String,
    /// When the request arrived, for the total duration.
    pub started: u64,
}

impl GenerationInput {
    /// `id_prefix` is `gen` or `job`; `shopper` is the shopper a browser
    /// credential acts for.
    pub async fn read(req: &mut Request, ctx: &Ctx, id_prefix: &str, shopper: Option<&ShopperId>) -> ApiResult<Self> {
        let started = Date::now().as_millis();
        let body = read_json_body(req, ctx.config.max_body_bytes).await?;
        let claim = idempotency::claim(req, &body)?;
        let mut request = GenerationRequest::from_json(&body, &ctx.config.image_policy)?;
        // The raw body goes as soon as it is parsed: holding it beside the
        // request would double what a large request takes (README "Memory").
        drop(body);
        if let Some(shopper) = shopper {
            request = request.for_shopper(shopper)?;
        }
        Ok(Self { request, claim, id: new_id(id_prefix), started })
    }

    /// What the limiter should hold for this request, and for how long. It
    /// keeps what the attempt is, so that the attempt is recorded even if
    /// its request dies first.
    pub fn reservation(&self, ttl_ms: u64, endpoint: &str) -> ReserveRequest {
        let meta = ReservationMeta {
            model: self.request.model.as_str().to_string(),
            garments_count: self.request.garments.len() as u64,
            endpoint: endpoint.to_string(),
            job: self.id.starts_with("job_"),
            deadline_ms: Date::now().as_millis() + ttl_ms,
        };
        ReserveRequest { id: self.id.clone(), ttl_ms, meta: Some(meta) }
    }
}
