-- Web (issue 7): hit counters that rate-limit the subscribe form, one row per (bucket, client, window).
-- `client` is a keyed hash of the IP address or email address, so the table holds no personal data.
CREATE TABLE web_rate_limits (
    bucket TEXT NOT NULL,             -- "subscribe-client" or "confirm-mail"
    client TEXT NOT NULL,             -- HMAC-SHA256 of the client, with the site's secret key
    window_start INTEGER NOT NULL,    -- Unix time at the start of the window
    hits INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, client, window_start)
) WITHOUT ROWID;
