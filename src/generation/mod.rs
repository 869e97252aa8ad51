//! A generation's life, below the HTTP layer: the FAL call, recording the
//! attempt, settling the limiter's reservation — synchronously (`sync`) or as
//! a job (`jobs`: submit, complete, cancel, poll). Handlers and FAL's webhook
//! call down into these; nothing here calls up.

pub mod follow;
pub mod jobs;
pub mod record;
pub mod settle;
pub mod sync;
