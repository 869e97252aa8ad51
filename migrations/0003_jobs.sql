-- Asynchronous jobs: a canceled job is recorded as such (neither a success
-- nor a failure), and clients may register a callback URL.
-- SQLite cannot change a CHECK constraint in place, so generations is rebuilt.

CREATE TABLE generations_v3 (
  id              TEXT PRIMARY KEY,
  client_id       TEXT NOT NULL REFERENCES clients (id),
  model           TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('success', 'error', 'canceled')),
  endpoint        TEXT NOT NULL,
  duration_ms     INTEGER NOT NULL,
  fal_duration_ms INTEGER,
  image_url       TEXT,
  error           TEXT,
  garments_count  INTEGER NOT NULL,
  cold_start      INTEGER NOT NULL DEFAULT 0,
  job_id          TEXT,
  created_at      INTEGER NOT NULL
);
INSERT INTO generations_v3 (id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at)
  SELECT id, client_id, model, status, endpoint, duration_ms, fal_duration_ms, image_url, error, garments_count, cold_start, job_id, created_at FROM generations;
DROP TABLE generations;
ALTER TABLE generations_v3 RENAME TO generations;
CREATE INDEX generations_client_created ON generations (client_id, created_at DESC, id DESC);
CREATE INDEX generations_created ON generations (created_at DESC, id DESC);
CREATE INDEX generations_job ON generations (job_id) WHERE job_id IS NOT NULL;

-- Where a client wants to be told that its jobs finished. The signing secret
-- is derived from WEBHOOK_SIGNING_KEY and this version; it is never stored.
ALTER TABLE clients ADD COLUMN webhook_url TEXT;
ALTER TABLE clients ADD COLUMN webhook_secret_version INTEGER NOT NULL DEFAULT 0;
