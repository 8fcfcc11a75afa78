-- Ledger reads that scale: every query pages by id on an index whose prefix is its filter, so no page sorts.
-- The old (channel, article, lang, state) index served none of them without a sort; it goes.
DROP INDEX IF EXISTS deliveries_by_state;
-- rows and counts of one state (needs attention), of one state of an article, of one state of a channel
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state);
CREATE INDEX IF NOT EXISTS deliveries_state_article ON deliveries (state, article);
CREATE INDEX IF NOT EXISTS deliveries_state_channel ON deliveries (state, channel);
-- an article's counts per channel, language and state, read from the index alone, already grouped
CREATE INDEX IF NOT EXISTS deliveries_article_summary ON deliveries (article, channel, lang, state);
-- the first details of a channel's versions (feeds keep their entry ids there): only rows that have some
CREATE INDEX IF NOT EXISTS deliveries_with_detail ON deliveries (channel) WHERE detail NOT IN ('', '{}');

-- Every article of the ledger, numbered in the order it first appeared: `status` lists the newest first
-- without reading the deliveries. A trigger keeps it, so no writer can forget it.
CREATE TABLE ledger_articles (
    id       INTEGER PRIMARY KEY,
    article  TEXT NOT NULL UNIQUE
);
INSERT INTO ledger_articles (id, article) SELECT MIN(id), article FROM deliveries GROUP BY article;
CREATE TRIGGER ledger_articles_add AFTER INSERT ON deliveries
BEGIN
    INSERT INTO ledger_articles (article) VALUES (NEW.article) ON CONFLICT (article) DO NOTHING;
END;
