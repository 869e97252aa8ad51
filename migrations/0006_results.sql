-- Result images kept in our own bucket (R2 binding RESULTS), because FAL
-- deletes its outputs. Each successful generation records the state of our
-- copy; `image_url` stays FAL's original URL, for operators.
--   result_status: NULL (no image: an error, a cancel, or a row from before
--     this migration), 'pending' (being copied or to be retried by the cron),
--     'stored', 'failed' (never copied), 'deleted' (retention or erasure).
ALTER TABLE generations ADD COLUMN result_status TEXT
  CHECK (result_status IS NULL OR result_status IN ('pending', 'stored', 'failed', 'deleted'));
ALTER TABLE generations ADD COLUMN result_content_type TEXT;
ALTER TABLE generations ADD COLUMN result_bytes INTEGER;
ALTER TABLE generations ADD COLUMN result_error TEXT;

-- Partial indexes, so the cron reads only the rows it acts on: copies to
-- retry (few), and images still held, oldest first, for every client and
-- per client (retention). A query uses one only when its WHERE repeats the
-- index's condition word for word.
CREATE INDEX generations_results_pending ON generations (created_at) WHERE result_status = 'pending';
CREATE INDEX generations_results_held ON generations (created_at) WHERE result_status IN ('pending', 'stored');
CREATE INDEX generations_client_results_held ON generations (client_id, created_at) WHERE result_status IN ('pending', 'stored');

-- Per-client retention of result images, in days (NULL: RETENTION_DAYS).
ALTER TABLE clients ADD COLUMN retention_days INTEGER CHECK (retention_days IS NULL OR retention_days > 0);
CREATE INDEX clients_retention ON clients (id) WHERE retention_days IS NOT NULL;

-- Deleting a client keeps its row as an inactive tombstone (past invoices
-- name it; usage rollups are kept) and erases its keys, generations and
-- images; `purged_at` is when a sweep first found nothing left of it.
ALTER TABLE clients ADD COLUMN deleted_at INTEGER;
ALTER TABLE clients ADD COLUMN purged_at INTEGER;
CREATE INDEX clients_deleted ON clients (deleted_at) WHERE deleted_at IS NOT NULL;
