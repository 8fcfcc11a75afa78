-- Web: hit counters that rate-limit the subscribe form, one row per (bucket, client, window); `client` is a
-- keyed hash, so the table holds no personal data (as in ../sqlite/0004_web.sql).
CREATE TABLE web_rate_limits (
    bucket       TEXT COLLATE "C" NOT NULL,
    client       TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,     -- Unix time at the start of the window
    hits         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, client, window_start)
);
