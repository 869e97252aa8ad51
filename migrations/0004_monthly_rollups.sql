-- Rollups for the dashboard and invoicing at scale (100,000 clients,
-- millions of generations), maintained in the same batch as each generation:
--   usage_monthly: one row per client and month; its expression index hands
--     out the busiest clients of a month without grouping anything;
--   usage_totals_daily: one row per day, for today's and the month's totals.
-- `month` is YYYY-MM (UTC).

CREATE TABLE usage_monthly (
  client_id      TEXT NOT NULL,
  month          TEXT NOT NULL,
  success_count  INTEGER NOT NULL DEFAULT 0,
  error_count    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (client_id, month)
) WITHOUT ROWID;
CREATE INDEX usage_monthly_busiest ON usage_monthly (month, success_count + error_count DESC);

CREATE TABLE usage_totals_daily (
  day            INTEGER PRIMARY KEY,
  success_count  INTEGER NOT NULL DEFAULT 0,
  error_count    INTEGER NOT NULL DEFAULT 0
);

INSERT INTO usage_monthly (client_id, month, success_count, error_count)
  SELECT client_id, strftime('%Y-%m', day * 86400, 'unixepoch'), SUM(success_count), SUM(error_count)
  FROM usage_daily GROUP BY 1, 2;
INSERT INTO usage_totals_daily (day, success_count, error_count)
  SELECT day, SUM(success_count), SUM(error_count) FROM usage_daily GROUP BY day;
