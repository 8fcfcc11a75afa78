-- Fewer indexes to write per email row (issue 17), as in ../sqlite/0090_ledger_bulk_indexes.sql: the first
-- details of a channel's versions and its versions by state are read for the per-version channels (feeds),
-- never for email, whose rows (one per recipient, three writes each) were entered in both. Both hold only the
-- other channels' rows now; a query that uses them repeats `channel <> 'email'` (publisher/store/postgres.py).
DROP INDEX IF EXISTS deliveries_with_detail;
CREATE INDEX deliveries_with_detail ON deliveries (channel, id) WHERE detail NOT IN ('', '{}') AND channel <> 'email';
DROP INDEX IF EXISTS deliveries_channel_versions;
CREATE INDEX deliveries_channel_versions ON deliveries (channel, state, article, lang) INCLUDE (id)
    WHERE channel <> 'email';
