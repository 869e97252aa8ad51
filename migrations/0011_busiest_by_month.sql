-- The overview's ten busiest clients of a month were read from an index on
-- each month's counts; every generation moved that client's entry in it:
-- one more D1 row written per try-on (14.05 -> 13.10 rows for a synchronous
-- one, measured with `scripts/bench.sh costs`). An index on the month alone changes only when a
-- client's first generation of the month creates its row; the overview then
-- reads the month's rows (one per active client) and sorts them. Rows read
-- cost a thousandth of rows written (D1's pricing), and the overview is an
-- operator's page, not a shopper's request.
DROP INDEX IF EXISTS usage_monthly_busiest;
CREATE INDEX usage_monthly_month ON usage_monthly (month);
