-- Redrive resets created_at (the start of the retry budget); the first creation time is kept here.
ALTER TABLE deliveries ADD COLUMN first_created_at INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET first_created_at = created_at;

-- The dead-letter queue across receivers, oldest dead first (per receiver: deliveries_dead).
CREATE INDEX deliveries_dead_at ON deliveries (dead_at) WHERE state = 'dead';

-- Archive search by sender and type, newest or oldest first (by subject: messages_subject).
CREATE INDEX messages_source ON messages (source);
CREATE INDEX messages_type ON messages (type);
