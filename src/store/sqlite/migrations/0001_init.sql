-- meterhub embedded schema, version 1. Forward-only: later changes are new numbered files.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE participants (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  receiver   TEXT,            -- JSON receiver settings incl. secrets, or NULL for a sender only
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
) STRICT;

CREATE TABLE api_keys (
  id          TEXT PRIMARY KEY,
  participant TEXT,           -- NULL for admin keys
  role        TEXT NOT NULL CHECK (role IN ('participant', 'admin')),
  hash        TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_participant ON api_keys (participant);

CREATE TABLE routes (
  version    INTEGER PRIMARY KEY,
  rules      TEXT NOT NULL,   -- JSON array of rules
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE meters (
  meter       TEXT NOT NULL,
  role        TEXT NOT NULL,
  participant TEXT NOT NULL,
  valid_from  INTEGER NOT NULL DEFAULT 0,            -- epoch ms; 0 = since ever
  valid_to    INTEGER,                               -- epoch ms, exclusive; NULL = open-ended
  PRIMARY KEY (meter, role, valid_from)
) STRICT, WITHOUT ROWID;

CREATE TABLE messages (
  sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
  source       TEXT NOT NULL,
  id           TEXT NOT NULL,
  type         TEXT NOT NULL,
  subject      TEXT NOT NULL,
  time         TEXT,
  attributes   TEXT NOT NULL,   -- JSON of the CloudEvents attributes
  content_type TEXT NOT NULL,
  size         INTEGER NOT NULL,
  sha256       TEXT NOT NULL,
  fingerprint  TEXT NOT NULL,
  received_at  INTEGER NOT NULL,
  body_kind    TEXT NOT NULL CHECK (body_kind IN ('inline', 'file')),
  body_key     TEXT,
  UNIQUE (source, id)
) STRICT;
CREATE INDEX messages_subject ON messages (subject, sequence);

CREATE TABLE bodies (
  sequence INTEGER PRIMARY KEY,
  data     BLOB NOT NULL
) STRICT;

CREATE TABLE deliveries (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  sequence        INTEGER NOT NULL,
  receiver        TEXT NOT NULL,
  mode            TEXT NOT NULL CHECK (mode IN ('push', 'pull')),
  subject         TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  receives        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  lease_until     INTEGER,
  lease_token     TEXT,
  last_attempt_at INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  delivered_at    INTEGER,
  dead_at         INTEGER,
  resend_of       INTEGER,
  webhook_id      TEXT NOT NULL
) STRICT;
CREATE INDEX deliveries_by_message ON deliveries (sequence);
CREATE INDEX deliveries_push_due ON deliveries (receiver, next_attempt_at, id) WHERE mode = 'push' AND state = 'pending';
CREATE INDEX deliveries_pull_ready ON deliveries (receiver, next_attempt_at, id) WHERE mode = 'pull' AND state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'delivering';
CREATE UNIQUE INDEX deliveries_lease_token ON deliveries (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries (receiver, dead_at) WHERE state = 'dead';

CREATE TABLE attempts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id INTEGER NOT NULL,
  sequence    INTEGER NOT NULL,
  receiver    TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  outcome     TEXT NOT NULL,
  status      INTEGER,
  latency_ms  INTEGER,
  error       TEXT
) STRICT;
CREATE INDEX attempts_by_message ON attempts (sequence, id);
