-- Fewer indexes to write per delivery (issue 17), as in ../sqlite/0080_ledger_write_indexes.sql: an UPDATE of
-- an indexed column (`state`) is never HOT, so every index of the table gets a new entry on each of a
-- delivery's three writes.
-- (state, id) is served by (state, channel, id): one id-ordered range per channel, merged.
DROP INDEX IF EXISTS deliveries_state;
-- A bounce's bulletin needs an address's few rows, not their state.
DROP INDEX IF EXISTS deliveries_by_target;
CREATE INDEX IF NOT EXISTS deliveries_target_channel ON deliveries (target, channel);
-- (state, article, id) stays here (SQLite's 0080 drops it): the shared queue's claim is one
-- `ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED` over a bulletin's rows of one state, which a read per language
-- merged afterwards could not lock as it reads.
