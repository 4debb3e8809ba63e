/**
 * The connector of the push Pool: it checks the address actually connected to, not only the one
 * the pre-flight check (target-guard.ts) saw, so that a DNS answer changing between the check and
 * the connect (DNS rebinding) cannot reach a private, loopback, link-local or metadata address.
 * Host names are checked in the `lookup` that net.connect uses; IP literals (which net.connect
 * does not look up) before connecting.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { isPrivateAddress } from './target-guard.ts';

export interface SafeConnectOptions {
  /** Let connections go to private addresses (allowPrivateTargets). */
  allowPrivate: boolean;
  /** Connect timeout (DNS included). */
  timeoutMs: number;
}

export class UnsafeTargetError extends Error {
  readonly code = 'EUNSAFETARGET';
  constructor(host: string, address: string) {
    const what = host === address ? address : `'${host}', which resolves to ${address}`;
    super(`refused to connect to ${what}: a private, loopback or link-local address (allowPrivateTargets is off)`);
    this.name = 'UnsafeTargetError';
  }
}

export function safeConnector(opts: SafeConnectOptions): buildConnector.connector {
  if (opts.allowPrivate) return buildConnector({ timeout: opts.timeoutMs });
  const connect = buildConnector({ timeout: opts.timeoutMs, lookup: guardedLookup });
  return (options, callback) => {
    const host = options.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && isPrivateAddress(host)) {
      queueMicrotask(() => callback(new UnsafeTargetError(host, host), null));
      return;
    }
    connect(options, callback);
  };
}

/** dns.lookup, failing when any address it gives is private (one bad address taints the name). */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, options as LookupOptions, (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
    if (err) return callback(err, address as string, family);
    const all = Array.isArray(address) ? address.map((a) => a.address) : [address];
    const bad = all.find((a) => isPrivateAddress(a));
    if (bad !== undefined) return callback(new UnsafeTargetError(hostname, bad) as unknown as NodeJS.ErrnoException, '', 0);
    (callback as (e: null, a: string | LookupAddress[], f?: number) => void)(null, address, family);
  });
};
