-- When the client's limiter object was first created. A Durable Object is
-- placed near the first request for it and never moves: admin actions
-- (near the operators) must not be that request. Until the object exists,
-- admin changes are not pushed to it (it reads them from D1 when the
-- client's first API request creates it, near the shop's traffic).
ALTER TABLE clients ADD COLUMN limiter_created_at INTEGER;

-- Every existing client's object was created by the admin action that
-- created the client.
UPDATE clients SET limiter_created_at = created_at;
