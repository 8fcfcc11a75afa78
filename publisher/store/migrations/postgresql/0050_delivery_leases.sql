-- Delivery leases (issue 14), as in ../sqlite/0050_delivery_leases.sql: the worker that claimed a row, until
-- when its claim holds (ISO text in UTC, compared as text), and whether the holder also held the bulletin's
-- own lock (0/1, as SQLite keeps it). The worker stays on the row once it is marked.
ALTER TABLE deliveries ADD COLUMN worker TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN lease_until TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN lease_exclusive INTEGER NOT NULL DEFAULT 0 CHECK (lease_exclusive IN (0, 1));
