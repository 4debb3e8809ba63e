/**
 * The FLOOR: the least a durable ingest endpoint can do on this machine with the hub's stack.
 * A bare Fastify route that inserts the request body into a SQLite file (WAL, synchronous=FULL),
 * with the hub's group commit (every insert of one event-loop turn in one transaction, each
 * request answered after COMMIT). No auth, no parsing, no hashing, no routing.
 *
 * With FLOOR_FORWARD_URL it is also the floor of a store-and-forward relay: after COMMIT each
 * message goes (from memory, FLOOR_FORWARD_INFLIGHT at a time) to that URL as a binary-mode
 * CloudEvent, and its delivery is recorded with the same group commit. Several URLs, comma
 * separated, make a fan-out: each URL its own queue and FLOOR_FORWARD_INFLIGHT slots, each
 * delivery a row of its own.
 *
 * Env: FLOOR_DB (file), FLOOR_PORT (0 = any). Prints `floor listening on <url>` when ready.
 */
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import { Pool } from 'undici';

const file = process.env.FLOOR_DB;
if (!file) throw new Error('set FLOOR_DB');
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS messages (sequence INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, delivered_at INTEGER)');
const insert = db.prepare('INSERT INTO messages (body) VALUES (?)');
const markDelivered = db.prepare('UPDATE messages SET delivered_at = ? WHERE sequence = ?');
db.exec('CREATE TABLE IF NOT EXISTS deliveries (sequence INTEGER NOT NULL, target INTEGER NOT NULL, delivered_at INTEGER NOT NULL, PRIMARY KEY (sequence, target))');
const insertDelivered = db.prepare('INSERT INTO deliveries (sequence, target, delivered_at) VALUES (@sequence, @target, @at)');
const count = db.prepare('SELECT count(*) AS n, count(delivered_at) AS delivered FROM messages');

/** Group commit, as the hub's WriteQueue: one transaction per event-loop turn. */
interface Op { fn: () => unknown; resolve: (v: any) => void; reject: (e: unknown) => void }
let ops: Op[] = [];
let scheduled = false;
function write<T>(fn: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    ops.push({ fn, resolve, reject });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
}
function flush(): void {
  scheduled = false;
  const group = ops;
  ops = [];
  const results: unknown[] = [];
  try {
    db.exec('BEGIN IMMEDIATE');
    for (const op of group) results.push(op.fn());
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    for (const op of group) op.reject(err);
    return;
  }
  group.forEach((op, i) => op.resolve(results[i]));
}

// ---- the optional relay ----
interface Item { sequence: number; body: Buffer }
interface Target { url: URL; pool: Pool; queue: Item[]; inFlight: number }
const maxInFlight = Number(process.env.FLOOR_FORWARD_INFLIGHT ?? 16);
const targets: Target[] = (process.env.FLOOR_FORWARD_URL ?? '').split(',').filter((u) => u !== '').map((u) => {
  const url = new URL(u);
  return { url, pool: new Pool(url.origin, { connections: maxInFlight, pipelining: 1 }), queue: [], inFlight: 0 };
});

function pump(t: Target, index: number): void {
  while (t.inFlight < maxInFlight && t.queue.length > 0) {
    const item = t.queue.shift()!;
    t.inFlight++;
    void forward(t, index, item).finally(() => { t.inFlight--; pump(t, index); });
  }
}

async function forward(t: Target, index: number, item: Item): Promise<void> {
  const event = JSON.parse(item.body.toString('utf8')) as Record<string, unknown>;
  const data = Buffer.from(JSON.stringify(event.data));
  for (;;) {
    try {
      const res = await t.pool.request({
        method: 'POST', path: t.url.pathname,
        headers: {
          'content-type': 'application/json', 'ce-specversion': '1.0', 'ce-id': String(event.id), 'ce-source': String(event.source),
          'ce-type': String(event.type), 'ce-subject': String(event.subject), 'ce-sequence': String(item.sequence),
        },
        body: data,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) break;
    } catch { /* retry */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (targets.length === 1) await write(() => markDelivered.run(Date.now(), item.sequence));
  else await write(() => insertDelivered.run({ sequence: item.sequence, target: index, at: Date.now() }));
}

const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

app.post('/v1/messages', async (request, reply) => {
  const body = request.body as Buffer;
  const sequence = await write(() => Number(insert.run(body).lastInsertRowid));
  targets.forEach((t, i) => {
    t.queue.push({ sequence, body });
    pump(t, i);
  });
  return reply.code(202).send({ sequence });
});

app.get('/_count', async () => count.get());

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.FLOOR_PORT ?? 0) });
process.stdout.write(`floor listening on ${address}\n`);

const stop = async () => {
  await app.close();
  await Promise.all(targets.map((t) => t.pool.close()));
  db.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
