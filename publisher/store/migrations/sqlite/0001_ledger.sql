-- One row per delivery: an article, in one language, through one channel, to one target.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    article     TEXT NOT NULL,
    lang        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'unconfirmed', 'skipped')),
    remote_id   TEXT,
    remote_url  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (article, lang, channel, target)
);
CREATE INDEX deliveries_by_state ON deliveries (channel, article, lang, state);
