-- Deliverability (issue 13): a suppression list. The status gains 'complained' (a spam complaint: unsubscribed
-- and never mailed again) and 'suppressed' (soft bounces over the limit, or an editor's decision), and each row
-- keeps why and when its status last changed that way. SQLite cannot change a CHECK, so the table is rebuilt as
-- 0005 did (the runner wraps this file in one transaction), keeping ids, rows and the index.
CREATE TABLE subscribers_new (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    name          TEXT,
    lang          TEXT NOT NULL CHECK (lang <> ''),
    status        TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained', 'suppressed')),
    themes        TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    confirmed_at  TEXT,
    updated_at    TEXT NOT NULL,
    status_reason TEXT,
    status_at     TEXT
);
INSERT INTO subscribers_new (id, email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at,
                             status_reason, status_at)
    SELECT id, email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at,
           CASE WHEN status = 'bounced' THEN 'refused at RCPT TO' END,
           CASE WHEN status = 'bounced' THEN updated_at END
    FROM subscribers;
DROP TABLE subscribers;
ALTER TABLE subscribers_new RENAME TO subscribers;
CREATE INDEX subscribers_status_id ON subscribers (status, id);

-- Every bounce, complaint and unsuppression, kept: soft bounces are counted over BOUNCE_SOFT_DAYS, and
-- `publisher status` shows each bulletin's rates. email_key is not a foreign key: the history of an address
-- erased from the list is erased with it (`Subscribers.remove`).
CREATE TABLE bounce_events (
    id         INTEGER PRIMARY KEY,
    email_key  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsuppress')),
    reason     TEXT,
    article    TEXT,
    source     TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX bounce_events_by_address ON bounce_events (email_key, kind, at);
CREATE INDEX bounce_events_by_article ON bounce_events (article, kind) WHERE article IS NOT NULL;

-- The bounce mail already acted on, by Message-ID: the same message delivered twice is acted on once.
CREATE TABLE bounce_messages (
    message_id TEXT PRIMARY KEY,
    outcome    TEXT NOT NULL,
    at         TEXT NOT NULL
) WITHOUT ROWID;

-- Which bulletin a bounce belongs to: the last one sent to that address (a short index read per bounce).
CREATE INDEX IF NOT EXISTS deliveries_by_target ON deliveries (target, channel, state);
