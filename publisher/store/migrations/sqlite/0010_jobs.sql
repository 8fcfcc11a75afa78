-- Scheduling (issue 12): jobs the worker runs when they are due (a scheduled publish, a digest, a retry).
-- `key` says what a job does, so scheduling the same thing again moves its open job instead of adding one.
-- A worker claims a job by writing its name and a lease expiry; a job whose lease has run out (its worker was
-- killed) may be claimed again, and the ledger makes the second run skip what the first one sent.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,               -- "publish", "digest", "retry_unconfirmed", "purge_pending"
    key TEXT NOT NULL,                -- what it does: "publish:content/a.en.md|x|ko"
    payload TEXT NOT NULL DEFAULT '{}',   -- JSON, as the kind reads it
    due_at TEXT NOT NULL,             -- ISO 8601 in UTC with an offset, like every timestamp of the store
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'cancelled', 'overdue', 'failed')),
    lease_owner TEXT,                 -- the worker running it ("host:pid:random")
    lease_until TEXT,                 -- its lease; after this another worker may take the job over
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    late_ok INTEGER NOT NULL DEFAULT 0,   -- released by a person: run it even though it is overdue
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX jobs_open_key ON jobs (key) WHERE state IN ('pending', 'overdue');
CREATE INDEX jobs_due ON jobs (state, due_at);
