-- Fewer indexes to write per email row (issue 17): the first details of a channel's versions and its versions
-- by state are read for the per-version channels (the feeds' entry ids and published versions, the feeds
-- build's key), never for email, whose rows (one per recipient, each written three times: pending, in_flight,
-- sent) were nonetheless entered in both. Both indexes now hold only the rows of the other channels; a
-- query that uses them repeats `channel <> 'email'` word for word, so SQLite may (publisher/store/sqlite.py).
DROP INDEX IF EXISTS deliveries_with_detail;
CREATE INDEX deliveries_with_detail ON deliveries (channel) WHERE detail NOT IN ('', '{}') AND channel <> 'email';
DROP INDEX IF EXISTS deliveries_channel_versions;
CREATE INDEX deliveries_channel_versions ON deliveries (channel, state, article, lang) WHERE channel <> 'email';
