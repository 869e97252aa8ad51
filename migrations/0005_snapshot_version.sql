-- A counter bumped by every admin change a client's limiter object must learn
-- of (settings, keys). The object refuses a copy of the client older than the
-- one it holds, so a refresh read from D1 just before a change cannot undo
-- the change when it lands after the admin's push.
ALTER TABLE clients ADD COLUMN snapshot_version INTEGER NOT NULL DEFAULT 0;
