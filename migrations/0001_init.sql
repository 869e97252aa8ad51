-- Clients (shops), their API keys, every generation attempt, daily rollups
-- and admin sessions. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE clients (
  id                    TEXT PRIMARY KEY,             -- cl_ + 16 [a-z0-9]; embedded in its API keys
  name                  TEXT NOT NULL,
  email                 TEXT,
  active                INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  usage_limit           INTEGER NOT NULL DEFAULT 5000 CHECK (usage_limit >= 0),   -- successful generations per calendar month (UTC)
  rate_limit_per_minute INTEGER NOT NULL DEFAULT 60 CHECK (rate_limit_per_minute > 0),
  allowed_origins       TEXT NOT NULL DEFAULT '[]',   -- JSON array of origins; empty = no browser access
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL
);
CREATE INDEX clients_created ON clients (created_at DESC);

-- Only the SHA-256 of a key is stored, with a short prefix for display.
CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  client_id   TEXT NOT NULL REFERENCES clients (id),
  key_hash    TEXT NOT NULL UNIQUE,
  prefix      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,          -- set when a rotation grants the old key a grace period
  revoked_at  INTEGER
);
CREATE INDEX api_keys_client ON api_keys (client_id, created_at);

CREATE TABLE generations (
  id              TEXT PRIMARY KEY,
  client_id       TEXT NOT NULL REFERENCES clients (id),
  model           TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('success', 'error')),
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
-- Per-client history, newest first, and cursor pagination over (created_at, id).
CREATE INDEX generations_client_created ON generations (client_id, created_at DESC, id DESC);
-- Admin listing across clients and time-range filters.
CREATE INDEX generations_created ON generations (created_at DESC, id DESC);

-- Maintained in the same batch as each generation insert, so that totals,
-- usage and charts read a few rows per client and day instead of scanning
-- generations. `day` is days since 1970-01-01 (UTC).
CREATE TABLE usage_daily (
  client_id        TEXT NOT NULL,
  day              INTEGER NOT NULL,
  model            TEXT NOT NULL,
  success_count    INTEGER NOT NULL DEFAULT 0,
  error_count      INTEGER NOT NULL DEFAULT 0,
  duration_ms_sum  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (client_id, day, model)
) WITHOUT ROWID;
CREATE INDEX usage_daily_day ON usage_daily (day);

CREATE TABLE admin_sessions (
  token_hash    TEXT PRIMARY KEY,  -- SHA-256 of the cookie value
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
