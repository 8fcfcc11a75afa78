-- Fewer indexes to write per delivery (issue 17): every row is written three times (pending, in_flight,
-- sent) and each write of `state` updates every index that holds it.
-- (state) alone is the prefix of (state, channel): the ledger's reads of one state across every channel go
-- through that index, one id-ordered range per channel, merged (publisher/store/sqlite.py, rows).
DROP INDEX IF EXISTS deliveries_state;
-- Which bulletin a bounce belongs to needs an address's few rows, not their state: (target, channel) finds
-- them, and a write of `state` no longer touches this index.
DROP INDEX IF EXISTS deliveries_by_target;
CREATE INDEX IF NOT EXISTS deliveries_target_channel ON deliveries (target, channel);
-- (state, article) goes too: an article's rows of one state are read per channel and language from
-- (article, channel, lang, state), which `status` needs anyway: each an id-ordered range, merged.
DROP INDEX IF EXISTS deliveries_state_article;
