-- Subscribers to the email bulletins (issue 4).
-- email_key is the normalized address folded to lower case, so an address that differs
-- only in case is the same subscriber; email keeps the spelling the subscriber gave.
-- themes is a comma-separated list of theme slugs; empty means "every theme".
CREATE TABLE subscribers (
    id           INTEGER PRIMARY KEY,
    email        TEXT NOT NULL,
    email_key    TEXT NOT NULL UNIQUE,
    name         TEXT,
    lang         TEXT NOT NULL DEFAULT 'en' CHECK (lang IN ('en', 'ko')),
    status       TEXT NOT NULL DEFAULT 'active'
                 CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    themes       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    confirmed_at TEXT,
    updated_at   TEXT NOT NULL
);

-- Bulletin sends stream active subscribers in id order, one batch at a time.
CREATE INDEX subscribers_status_id ON subscribers (status, id);
