import type { Store } from '../store/store.ts';
import { HubError } from '../errors/hub-error.ts';
import { hashKey, hashesEqual } from './keys.ts';

export type Caller =
  | { kind: 'admin'; keyId: string }
  | { kind: 'participant'; participant: string; keyId: string };

interface CacheEntry { caller: Caller | null; until: number }

/**
 * Resolves a Bearer key to a caller. Lookups are cached briefly (ingest is hot); revocation in
 * this process clears the cache at once, and within `ttlMs` everywhere else.
 */
export class Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly bootstrapHash: string | null;

  constructor(private readonly store: Store, bootstrapAdminKey: string | null, private readonly ttlMs = 5_000) {
    this.bootstrapHash = bootstrapAdminKey ? hashKey(bootstrapAdminKey) : null;
  }

  async authenticate(authorization: string | undefined): Promise<Caller> {
    const key = parseBearer(authorization);
    const hash = hashKey(key);
    const now = Date.now();
    const cached = this.cache.get(hash);
    let caller: Caller | null;
    if (cached && cached.until > now) {
      caller = cached.caller;
    } else {
      caller = await this.lookup(hash);
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(hash, { caller, until: now + this.ttlMs });
    }
    if (!caller) throw new HubError('unauthorized', 'the API key is not known or was revoked');
    return caller;
  }

  invalidate(): void {
    this.cache.clear();
  }

  private async lookup(hash: string): Promise<Caller | null> {
    if (this.bootstrapHash && hashesEqual(hash, this.bootstrapHash)) return { kind: 'admin', keyId: 'bootstrap' };
    const record = await this.store.findKeyByHash(hash);
    if (!record || record.revokedAt !== null || !hashesEqual(record.hash, hash)) return null;
    if (record.role === 'admin') return { kind: 'admin', keyId: record.id };
    const participant = await this.store.getParticipant(record.participant!);
    if (!participant) return null;
    return { kind: 'participant', participant: participant.id, keyId: record.id };
  }
}

function parseBearer(header: string | undefined): string {
  if (!header) throw new HubError('unauthorized', 'send the API key as Authorization: Bearer <key>');
  const m = /^Bearer[ ]+([\x21-\x7e]{1,512})[ ]*$/i.exec(header);
  if (!m) throw new HubError('unauthorized', 'the Authorization header must be "Bearer <key>"');
  return m[1]!;
}
