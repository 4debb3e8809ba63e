import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import type { Authenticator } from '../auth/authenticator.ts';
import { configKeyId, generateKey, hashKey } from '../auth/keys.ts';
import type { ParticipantBody } from '../config/receiver-schema.ts';
import type { RouteRule } from '../config/route-schema.ts';
import { generateSecret } from '../delivery/signing.ts';
import { HubError } from '../errors/hub-error.ts';
import type { ParticipantDirectory } from '../participants/directory.ts';
import type { Router } from '../routing/router.ts';
import type { Store } from '../store/store.ts';
import type { ParticipantRecord, StoredReceiver } from '../store/types.ts';
import { checkMeterCsv, type CheckedImport } from './meter-import.ts';
import type { TargetGuard } from '../delivery/target-guard.ts';

export function participantView(p: ParticipantRecord) {
  let receiver: Record<string, unknown> | null = null;
  if (p.receiver) {
    const { secrets, ...rest } = p.receiver as StoredReceiver & { secret?: string; previousSecret?: string };
    delete (rest as Record<string, unknown>).secret;
    delete (rest as Record<string, unknown>).previousSecret;
    receiver = p.receiver.mode === 'push' ? { ...rest, secretCount: secrets?.length ?? 0 } : rest;
  }
  return { id: p.id, name: p.name, receiver, createdAt: new Date(p.createdAt).toISOString(), updatedAt: new Date(p.updatedAt).toISOString() };
}

/** Everything an operator configures, shared by the admin API and the config file read at start. */
export class AdminService {
  /** Registry imports are applied one at a time (the previous one's end, failed or not). */
  private applying: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly directory: ParticipantDirectory,
    private readonly router: Router,
    private readonly auth: Authenticator,
    private readonly guard: TargetGuard,
    /** Where a registry upload is spooled while its rows are checked (the data folder, not a tmpfs: it is the size of the file). */
    private readonly spoolDir: string = tmpdir(),
  ) {}

  async putParticipant(id: string, body: ParticipantBody): Promise<{ created: boolean; participant: ReturnType<typeof participantView>; secret?: string }> {
    let stored: StoredReceiver | null = null;
    let secret: string | undefined;
    if (body.receiver?.mode === 'push') {
      await this.guard.check(body.receiver.url);
      const before = await this.store.getParticipant(id);
      const kept = before?.receiver?.mode === 'push' ? before.receiver.secrets?.[0] : undefined;
      secret = body.receiver.secret ?? kept ?? generateSecret();
      const { secret: _s, previousSecret, ...settings } = body.receiver;
      stored = { ...settings, secrets: previousSecret ? [secret, previousSecret] : [secret] };
    } else if (body.receiver) {
      stored = body.receiver;
    }
    const { created, record } = await this.store.upsertParticipant(id, body.name, stored, Date.now());
    if (stored) await this.store.setPendingMode(id, stored.mode);
    await this.changed();
    return { created, participant: participantView(record), ...(secret ? { secret } : {}) };
  }

  async deleteParticipant(id: string): Promise<void> {
    if (!(await this.store.deleteParticipant(id, Date.now()))) throw new HubError('not-found', `no participant '${id}'`);
    await this.changed();
  }

  async createKey(participant: string): Promise<{ id: string; key: string }> {
    if (!(await this.store.getParticipant(participant))) throw new HubError('not-found', `no participant '${participant}'`);
    const { id, key } = generateKey();
    await this.store.insertKey({ id, participant, role: 'participant', hash: hashKey(key), createdAt: Date.now(), revokedAt: null });
    return { id, key };
  }

  async createAdminKey(): Promise<{ id: string; key: string }> {
    const { id, key } = generateKey();
    await this.store.insertKey({ id, participant: null, role: 'admin', hash: hashKey(key), createdAt: Date.now(), revokedAt: null });
    return { id, key };
  }

  /** A key given in the config file: stored hashed, idempotent across restarts. */
  async ensureConfigKey(participant: string, key: string): Promise<void> {
    const hash = hashKey(key);
    const existing = await this.store.findKeyByHash(hash);
    if (existing) {
      if (existing.participant !== participant) throw new HubError('invalid-config', `a configured key of '${participant}' is already another participant's key`);
      return;
    }
    try {
      await this.store.insertKey({ id: configKeyId(hash), participant, role: 'participant', hash, createdAt: Date.now(), revokedAt: null });
    } catch (error) {
      // Another hub sharing the store, started at the same time from the same config file, stored it first.
      if ((await this.store.findKeyByHash(hash))?.participant === participant) return;
      throw error;
    }
  }

  async revokeKey(participant: string | null, keyId: string): Promise<void> {
    if (!(await this.store.revokeKey(participant, keyId, Date.now()))) throw new HubError('not-found', `no active key '${keyId.slice(0, 40)}'`);
    this.auth.invalidate();
  }

  async listKeys(participant: string) {
    if (!(await this.store.getParticipant(participant))) throw new HubError('not-found', `no participant '${participant}'`);
    return (await this.store.listKeys(participant)).map((k) => ({
      id: k.id, createdAt: new Date(k.createdAt).toISOString(), revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
    }));
  }

  async setRoutes(rules: RouteRule[]): Promise<number> {
    const version = await this.store.setRoutes(rules, Date.now());
    await this.router.reload();
    return version;
  }

  /** Checks every row of a registry CSV (nothing written yet); a bad row throws invalid-csv with its line. */
  checkMeters(stream: Readable, onRows?: (rows: number) => void): Promise<CheckedImport> {
    return checkMeterCsv(this.store, stream, this.spoolDir, onRows);
  }

  /** Applies a checked import, after any import still being applied. */
  applyMeters(checked: CheckedImport, onChunk?: (applied: number) => void): Promise<number> {
    const run = this.applying.then(() => checked.apply(onChunk));
    this.applying = run.catch(() => {});
    return run;
  }

  /** Checks, then applies: all rows or, for a bad row, none. */
  async importMeters(stream: Readable): Promise<number> {
    return this.applyMeters(await this.checkMeters(stream));
  }

  private async changed(): Promise<void> {
    await this.directory.reload();
    this.auth.invalidate();
  }
}
