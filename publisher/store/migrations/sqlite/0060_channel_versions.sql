-- A channel's versions by state, read from the index alone: the versions published to the feeds (a publish
-- needs their (article, lang), not their rows) and a fingerprint of the channel's rows per state for the
-- feeds build's key, each one index range with no sort.
CREATE INDEX IF NOT EXISTS deliveries_channel_versions ON deliveries (channel, state, article, lang);
