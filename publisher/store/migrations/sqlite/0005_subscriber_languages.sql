-- Subscribers may read any language the site declares (PUBLISHER_LANGUAGES), checked by publisher/subscribers.py:
-- the CHECK (lang IN ('en', 'ko')) goes. SQLite cannot drop a CHECK, so the table is rebuilt (the runner wraps
-- this file in one transaction: a failure leaves the old table as it was), keeping ids, rows and the index.
CREATE TABLE subscribers_new (
    id           INTEGER PRIMARY KEY,
    email        TEXT NOT NULL,
    email_key    TEXT NOT NULL UNIQUE,
    name         TEXT,
    lang         TEXT NOT NULL CHECK (lang <> ''),
    status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    themes       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    confirmed_at TEXT,
    updated_at   TEXT NOT NULL
);
INSERT INTO subscribers_new (id, email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at)
    SELECT id, email, email_key, name, lang, status, themes, created_at, confirmed_at, updated_at FROM subscribers;
DROP TABLE subscribers;
ALTER TABLE subscribers_new RENAME TO subscribers;
CREATE INDEX subscribers_status_id ON subscribers (status, id);
