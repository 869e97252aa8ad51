-- Outbound events (client callbacks, metrics forwarding) go through the
-- EVENTS queue; this is their delivery log, and each client's callback
-- choices and health. Independent of 0005/0006: it only adds columns and
-- tables of its own. Times are milliseconds since the Unix epoch (UTC).

-- Which callback event types a client wants: a JSON array of names, or NULL
-- for every type (the default, also for clients that existed before).
ALTER TABLE clients ADD COLUMN webhook_events TEXT;
-- Set when the client's endpoint has kept failing for CALLBACK_PAUSE_AFTER_SECONDS
-- (a day by default): its callbacks are then logged as paused, not attempted,
-- until an admin resumes them.
ALTER TABLE clients ADD COLUMN callbacks_paused_at INTEGER;
-- The first failed callback attempt since the last successful one.
ALTER TABLE clients ADD COLUMN callbacks_failing_since INTEGER;

-- One row per event and receiver. The payload is kept so that every attempt
-- and every redelivery sends the same body under the same webhook-id.
CREATE TABLE deliveries (
  id               TEXT PRIMARY KEY,             -- dlv_ + 20 [a-z0-9]
  client_id        TEXT NOT NULL,                -- whose event (metrics events too)
  destination      TEXT NOT NULL CHECK (destination IN ('callback', 'metrics')),
  event_type       TEXT NOT NULL,                -- job.completed, job.failed, generation.completed, generation.recorded
  event_id         TEXT NOT NULL,                -- the webhook-id receivers deduplicate on
  payload          TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'delivered', 'failed', 'paused')),
  run              INTEGER NOT NULL DEFAULT 1,   -- bumped by each redelivery; older runs' messages are dropped
  attempts         INTEGER NOT NULL DEFAULT 0,   -- attempts over all runs
  target           TEXT,                         -- the URL of the latest attempt
  last_status_code INTEGER,
  last_error       TEXT,
  next_attempt_at  INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  delivered_at     INTEGER,
  dead_lettered_at INTEGER
);
-- An event is enqueued once per receiver, however often it is announced.
CREATE UNIQUE INDEX deliveries_event ON deliveries (event_id, destination);
-- A client's log, newest first, and cursor pagination over (created_at, id).
CREATE INDEX deliveries_client_created ON deliveries (client_id, created_at DESC, id DESC);
-- The cron's purge.
CREATE INDEX deliveries_created ON deliveries (created_at);

-- Every attempt: what was called, what came back, how long it took, and
-- when the next attempt is due (NULL after the last one).
CREATE TABLE delivery_attempts (
  delivery_id     TEXT NOT NULL,
  attempt         INTEGER NOT NULL,              -- 1, 2, … over all runs of the delivery
  run             INTEGER NOT NULL,
  target          TEXT NOT NULL,
  status_code     INTEGER,                       -- NULL when the request failed in transport
  error           TEXT,                          -- transport error, timeout, or why a non-2xx counts as failure
  latency_ms      INTEGER NOT NULL,
  attempted_at    INTEGER NOT NULL,
  next_attempt_at INTEGER,
  PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
