-- ordering: subject. A delivery is claimable only when no earlier (sequence, id) delivery of the
-- same receiver and subject is open (pending or delivering): this index answers that probe
-- directly, and holds only open deliveries, so it stays small however long the archive grows.
-- (The query must say `state IN ('pending', 'delivering')` exactly so for SQLite to use it.)
CREATE INDEX deliveries_open_by_subject ON deliveries (receiver, subject, sequence, id) WHERE state IN ('pending', 'delivering');
