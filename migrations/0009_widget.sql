-- Browser credentials and shoppers.
--   api_keys.kind: 'secret' (servers) or 'publishable' (pages). A publishable
--     key is public by design, so it is kept whole for the dashboard; a secret
--     key still only as its SHA-256 and display prefix.
--   clients: limits on browser traffic (per client, per shopper).
--   generations: the shopper a generation was for, and the shop's metadata.
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'secret' CHECK (kind IN ('secret', 'publishable'));
ALTER TABLE api_keys ADD COLUMN publishable_key TEXT;

ALTER TABLE clients ADD COLUMN widget_rate_limit_per_minute INTEGER NOT NULL DEFAULT 30 CHECK (widget_rate_limit_per_minute > 0);
ALTER TABLE clients ADD COLUMN shopper_rate_limit_per_minute INTEGER NOT NULL DEFAULT 5 CHECK (shopper_rate_limit_per_minute > 0);
ALTER TABLE clients ADD COLUMN shopper_daily_limit INTEGER NOT NULL DEFAULT 30 CHECK (shopper_daily_limit > 0);

ALTER TABLE generations ADD COLUMN shopper_id TEXT;
ALTER TABLE generations ADD COLUMN metadata TEXT;
-- A shopper's history, newest first, and erasure of a shopper's rows.
CREATE INDEX generations_client_shopper ON generations (client_id, shopper_id, created_at DESC, id DESC) WHERE shopper_id IS NOT NULL;
