-- A channel's versions by state, read from the index alone (as in ../sqlite/0060_channel_versions.sql): the
-- versions published to the feeds and a fingerprint of the channel's rows per state for the feeds build's key.
CREATE INDEX deliveries_channel_versions ON deliveries (channel, state, article, lang) INCLUDE (id);
