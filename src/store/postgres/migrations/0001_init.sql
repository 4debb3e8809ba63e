-- meterhub PostgreSQL schema, version 1: the same state as the embedded store's schema 0003.
-- Forward-only: later changes are new numbered files, never edits of this one.
-- Times are epoch milliseconds (bigint); JSON is kept as the exact text the hub wrote.

-- The sequence counter: one row, updated inside the ingest transaction. Its row lock, held until
-- COMMIT, serialises ingest commits across every hub process, so sequences increase in commit
-- order (spec invariant 8); see sequences.ts for the trade-off against a plain SEQUENCE.
CREATE TABLE hub_sequence (
  id   boolean PRIMARY KEY DEFAULT true CHECK (id),
  last bigint  NOT NULL CHECK (last >= 0)
);
INSERT INTO hub_sequence (id, last) VALUES (true, 0);

CREATE TABLE participants (
  id         text PRIMARY KEY,
  name       text   NOT NULL,
  receiver   text,            -- JSON receiver settings incl. secrets, or NULL for a sender only
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  deleted_at bigint
);

CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  participant text,           -- NULL for admin keys
  role        text   NOT NULL CHECK (role IN ('participant', 'admin')),
  hash        text   NOT NULL UNIQUE,
  created_at  bigint NOT NULL,
  revoked_at  bigint
);
CREATE INDEX api_keys_participant ON api_keys (participant, created_at, id);

CREATE TABLE routes (
  version    bigint PRIMARY KEY,
  rules      text   NOT NULL,  -- JSON array of rules
  created_at bigint NOT NULL
);

CREATE TABLE meters (
  meter       text   NOT NULL,
  role        text   NOT NULL,
  participant text   NOT NULL,
  valid_from  bigint NOT NULL DEFAULT 0,   -- epoch ms; 0 = since ever
  valid_to    bigint,                      -- epoch ms, exclusive; NULL = open-ended
  PRIMARY KEY (meter, role, valid_from)
);

CREATE TABLE messages (
  sequence     bigint PRIMARY KEY,         -- from hub_sequence, never from a SEQUENCE
  source       text   NOT NULL,
  id           text   NOT NULL,
  type         text   NOT NULL,
  subject      text   NOT NULL,
  time         text,
  attributes   text   NOT NULL,            -- JSON of the CloudEvents attributes
  content_type text   NOT NULL,
  size         bigint NOT NULL,
  sha256       text   NOT NULL,
  fingerprint  text   NOT NULL,
  received_at  bigint NOT NULL,
  body_kind    text   NOT NULL CHECK (body_kind IN ('inline', 'file')),
  body_key     text,
  UNIQUE (source, id)
);
CREATE INDEX messages_subject ON messages (subject, sequence);
CREATE INDEX messages_source ON messages (source, sequence);
CREATE INDEX messages_type ON messages (type, sequence);

-- Inline bodies (file bodies stay with the archive's body storage).
CREATE TABLE bodies (
  sequence bigint PRIMARY KEY,
  data     bytea  NOT NULL
);

CREATE TABLE deliveries (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sequence         bigint  NOT NULL,
  receiver         text    NOT NULL,
  mode             text    NOT NULL CHECK (mode IN ('push', 'pull')),
  subject          text    NOT NULL,
  state            text    NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  receives         integer NOT NULL DEFAULT 0,
  created_at       bigint  NOT NULL,
  first_created_at bigint  NOT NULL,
  next_attempt_at  bigint  NOT NULL,
  lease_until      bigint,
  lease_token      text,
  last_attempt_at  bigint,
  last_status      integer,
  last_error       text,
  delivered_at     bigint,
  dead_at          bigint,
  resend_of        bigint,
  webhook_id       text    NOT NULL
);
CREATE INDEX deliveries_by_message ON deliveries (sequence, id);
CREATE INDEX deliveries_push_due ON deliveries (receiver, next_attempt_at, id) WHERE mode = 'push' AND state = 'pending';
CREATE INDEX deliveries_push_next ON deliveries (next_attempt_at) WHERE mode = 'push' AND state = 'pending';
CREATE INDEX deliveries_pull_ready ON deliveries (receiver, next_attempt_at, id) WHERE mode = 'pull' AND state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'delivering';
CREATE UNIQUE INDEX deliveries_lease_token ON deliveries (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (receiver, dead_at, id) WHERE state = 'dead';
CREATE INDEX deliveries_dead_at ON deliveries (dead_at, id) WHERE state = 'dead';
-- ordering: subject. "No earlier open delivery of this receiver and subject": only open rows,
-- so it stays small however long the archive grows. Queries repeat its WHERE word for word.
CREATE INDEX deliveries_open_by_subject ON deliveries (receiver, subject, sequence, id) WHERE state IN ('pending', 'delivering');

CREATE TABLE attempts (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id bigint  NOT NULL,
  sequence    bigint  NOT NULL,
  receiver    text    NOT NULL,
  started_at  bigint  NOT NULL,
  outcome     text    NOT NULL,
  status      integer,
  latency_ms  bigint,
  error       text
);
CREATE INDEX attempts_by_message ON attempts (sequence, id);
