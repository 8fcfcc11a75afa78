-- Issue 14: the per-transport send rate shared by every process of a site (a token bucket per transport, e.g.
-- "email:smtp:mail.example.org:587"), taken from in small chunks (`TokenBuckets.take`). Transient state: `db
-- copy` leaves it out, and a bucket that is missing starts full.
CREATE TABLE token_buckets (
    name TEXT NOT NULL PRIMARY KEY,
    tokens REAL NOT NULL,             -- what is left to take, at most the burst
    updated REAL NOT NULL             -- Unix time (the takers' clock) the tokens were counted at
) WITHOUT ROWID;
