-- Issue 14: the per-transport send rate shared by every worker (as in ../sqlite/0055_token_buckets.sql); a take
-- locks the bucket's row for its transaction (`SELECT ... FOR UPDATE`), so two workers take turns.
CREATE TABLE token_buckets (
    name    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tokens  DOUBLE PRECISION NOT NULL,   -- what is left to take, at most the burst
    updated DOUBLE PRECISION NOT NULL    -- Unix time (the takers' clock) the tokens were counted at
);
