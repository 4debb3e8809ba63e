import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { AdminService } from '../admin/admin-service.ts';
import { Archive } from '../archive/archive.ts';
import { createBodyStore } from '../archive/body-stores.ts';
import { Authenticator } from '../auth/authenticator.ts';
import type { HubConfig } from '../config/hub-config.ts';
import { PushDispatcher } from '../delivery/push-dispatcher.ts';
import { TargetGuard } from '../delivery/target-guard.ts';
import { DeadLetterAlerts } from '../dlq/dead-alerts.ts';
import { DeadLetterQueue, type DeliveriesReady } from '../dlq/dlq-service.ts';
import { InboxService } from '../inbox/inbox-service.ts';
import { IngestService } from '../ingest/ingest-service.ts';
import { LeaseKeeper } from '../maintenance/lease-keeper.ts';
import { ParticipantDirectory } from '../participants/directory.ts';
import { ResendService } from '../replay/resend-service.ts';
import { Router } from '../routing/router.ts';
import { isPostgresUrl } from '../store/postgres/pool.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { ThreadedSqliteStore } from '../store/sqlite/threaded-sqlite-store.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryRecord } from '../store/types.ts';
import { Metrics } from './metrics.ts';
import { applyConfigFile } from './apply-config.ts';
import { DataDirLock } from './data-dir-lock.ts';

/** The hub's services, wired together: what buildApp serves and what the entry point starts. */
export interface Hub {
  config: HubConfig;
  logger: Logger;
  store: Store;
  archive: Archive;
  directory: ParticipantDirectory;
  router: Router;
  auth: Authenticator;
  guard: TargetGuard;
  ingest: IngestService;
  admin: AdminService;
  inbox: InboxService;
  push: PushDispatcher;
  leases: LeaseKeeper;
  metrics: Metrics;
  dlq: DeadLetterQueue;
  resends: ResendService;
  alerts: DeadLetterAlerts;
  /** Set when the hub made the first admin key at this start: shown once. */
  generatedAdminKey: string | null;
  adminKeySource: 'environment' | 'config' | 'generated' | 'stored';
  start(): void;
  stop(): Promise<void>;
}

async function openStore(storage: HubConfig['storage'], databaseUrl: string | null): Promise<Store> {
  if (databaseUrl !== null) return PostgresStore.open(databaseUrl);
  const file = join(storage.dataDir, 'meterhub.db');
  return storage.sqliteWrites === 'worker' ? ThreadedSqliteStore.open(file) : new SqliteStore(file);
}

export async function createHub(config: HubConfig, opts: { logger?: Logger } = {}): Promise<Hub> {
  const logger = opts.logger ?? pino({ level: process.env.METERHUB_LOG_LEVEL ?? 'info' });
  const databaseUrl = config.storage.databaseUrl || null;
  if (databaseUrl !== null && !isPostgresUrl(databaseUrl)) throw new Error('storage.databaseUrl (METERHUB_DATABASE_URL) must be a postgres:// or postgresql:// URL; unset it to use the embedded store');
  mkdirSync(config.storage.dataDir, { recursive: true });
  const lock = DataDirLock.acquire(config.storage.dataDir);
  const store = await openStore(config.storage, databaseUrl).catch((e: unknown) => { lock.release(); throw e; });
  const bodies = createBodyStore(config.storage);
  /** A hub that does not start frees what it took: its store (whose thread would keep the process alive), its body store, its lock. */
  const abandon = async (e: unknown): Promise<never> => {
    await bodies.close().catch(() => {});
    await store.close().catch(() => {});
    lock.release();
    throw e;
  };
  await bodies.init().catch(abandon);
  const archive = new Archive(store, bodies);
  const directory = new ParticipantDirectory(store);
  const router = new Router(store, directory, config.validateSubject);
  const auth = new Authenticator(store, config.adminKey);
  const guard = new TargetGuard(config.allowPrivateTargets);
  const metrics = new Metrics();
  const admin = new AdminService(store, directory, router, auth, guard, join(config.storage.dataDir, 'imports'));
  const alerts = new DeadLetterAlerts(config.alerts, logger);
  const onDead = (d: DeliveryRecord, reason: string) => {
    metrics.deadLettered.inc({ receiver: d.receiver });
    logger.warn({ event: 'delivery.dead', sequence: d.sequence, receiver: d.receiver, deliveryId: d.id, reason: reasonForLog(reason) }, 'delivery dead-lettered');
    alerts.raise(d, reason);
  };
  const inbox = new InboxService(store, directory, archive, { onDead });
  const push = new PushDispatcher({
    store, directory, archive, guard, logger,
    onAttempt: (receiver, result) => metrics.attempts.inc({ receiver, result: result.kind }),
    onDead,
  }, { ...config.delivery, defaultRetry: config.delivery.retry });
  const ingest = new IngestService(store, router, bodies, {
    inlineBodyMaxBytes: config.storage.inlineBodyMaxBytes,
    onCommitted: (receivers) => {
      metrics.accepted.inc();
      let anyPush = false;
      for (const r of receivers) {
        if (r.mode === 'push') anyPush = true;
        else inbox.notify(r.receiver);
      }
      if (anyPush) push.wake();
    },
  });
  // Redriven and resent deliveries: wake the push scheduler, answer waiting long polls.
  const ready: DeliveriesReady = (receivers) => {
    let anyPush = false;
    for (const r of receivers) {
      if (r.mode === 'push') anyPush = true;
      else inbox.notify(r.receiver);
    }
    if (anyPush) push.wake();
  };
  const dlq = new DeadLetterQueue(store, ready);
  const resends = new ResendService(store, directory, ready);
  const leases = new LeaseKeeper(store, directory, logger, config.maintenance.intervalMs, {
    onReleased: (pull) => { if (!pull) push.wake(); else for (const p of directory.all()) inbox.notify(p.id); },
    beforeRescue: () => push.retryUnrecorded(),
    onDead,
  });

  // The embedded store has one process (the lock says so): leases left by a killed process are void.
  // Not on PostgreSQL: other hubs sharing it hold live leases; a dead hub's leases expire and the lease keeper rescues them.
  let adminKey: Awaited<ReturnType<typeof applyConfigFile>>;
  try {
    if (store.kind === 'sqlite') await store.releaseAllPushLeases(Date.now());
    adminKey = await applyConfigFile(config, { store, admin, logger });
    await directory.reload();
    await router.reload();
  } catch (e) {
    await alerts.stop().catch(() => {});
    return abandon(e);
  }

  let started = false;
  let stopped = false;
  return {
    config, logger, store, archive, directory, router, auth, guard, ingest, admin, inbox, push, leases, metrics, dlq, resends, alerts,
    generatedAdminKey: adminKey.generated, adminKeySource: adminKey.source,
    start() {
      if (started || stopped) return;
      started = true;
      push.start();
      leases.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      leases.stop();
      await push.stop();
      await alerts.stop();
      await store.close();
      await bodies.close();
      lock.release();
    },
  };
}

/**
 * A dead delivery's reason without the receiver's answer: receivers often echo the message body
 * in their error answers, and message bodies stay out of the log. (The delivery's lastError,
 * shown to those who may see the delivery, keeps the snippet.)
 */
export function reasonForLog(reason: string): string {
  return reason.replace(/^HTTP (\d{3}): [\s\S]*?((?:; [a-z][a-z0-9 ()-]*)?)$/, 'HTTP $1 (answer not logged)$2');
}
