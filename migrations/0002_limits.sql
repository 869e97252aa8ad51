-- Per-client concurrency cap and optional burst for the token bucket
-- (NULL = the per-minute figure), enforced by the RATE_LIMITER Durable Object.
ALTER TABLE clients ADD COLUMN max_concurrent INTEGER NOT NULL DEFAULT 4 CHECK (max_concurrent > 0);
ALTER TABLE clients ADD COLUMN rate_limit_burst INTEGER CHECK (rate_limit_burst IS NULL OR rate_limit_burst > 0);

-- The limiter settles reservations a crashed worker left behind by looking up
-- the generation recorded for them, by generation id or by job id.
CREATE INDEX generations_job ON generations (job_id) WHERE job_id IS NOT NULL;
