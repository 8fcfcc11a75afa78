-- Delivery leases (issue 14): the worker that claimed a row and until when its claim holds. A worker renews
-- its lease while it sends; another may take an in_flight row only once its lease has run out (the holder
-- died), and re-sends it as a possible duplicate. ``worker`` stays on the row once it is marked, so an
-- operator sees who sent what. ``lease_exclusive``: the holder also held the bulletin's own lock (an
-- in-process ``publish``), so a run that holds that lock now knows the holder is gone.
ALTER TABLE deliveries ADD COLUMN worker TEXT;
ALTER TABLE deliveries ADD COLUMN lease_until TEXT;
ALTER TABLE deliveries ADD COLUMN lease_exclusive INTEGER NOT NULL DEFAULT 0 CHECK (lease_exclusive IN (0, 1));
