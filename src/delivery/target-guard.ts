import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { HubError } from '../errors/hub-error.ts';

/** Addresses a receiver URL may not point at unless the operator allows private targets. */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
// Not `::ffff:0:0/96` (IPv4-mapped): BlockList matches every IPv4 address against that rule, so it
// would refuse all of them. Mapped addresses are checked as the IPv4 address they carry instead.
for (const [net, prefix] of [['::', 96], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** True for private, loopback, link-local, metadata, multicast and reserved addresses, and for anything that is not an IP address. */
export function isPrivateAddress(address: string): boolean {
  try {
    const family = isIP(address);
    if (family === 0) return true;
    if (family === 4) return blocked.check(address, 'ipv4');
    if (address.includes('%')) return true; // a zone ID: link-local by nature
    const v4 = mappedIPv4(address);
    return v4 ? blocked.check(v4, 'ipv4') : blocked.check(address, 'ipv6');
  } catch {
    return true;
  }
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, `::ffff:7f00:1`, long forms), or null. */
function mappedIPv4(v6: string): string | null {
  const canonical = new URL(`http://[${v6}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!m) return null;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * Refuses receiver URLs that resolve to private, loopback, link-local or metadata addresses
 * (SSRF), at configuration time and again before each delivery, since DNS can change.
 */
export class TargetGuard {
  private readonly cache = new Map<string, { ok: boolean; reason: string; until: number }>();

  constructor(readonly allowPrivate: boolean, private readonly ttlMs = 30_000) {}

  async check(url: string): Promise<void> {
    const reason = await this.refusal(url);
    if (reason) throw new HubError('unsafe-target', reason);
  }

  /** Why a URL may not be used, or null when it may. Cached per host for `ttlMs`. */
  async refusal(url: string): Promise<string | null> {
    let host: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return `receiver URLs are http or https, not ${u.protocol}`;
      if (u.username || u.password) return 'receiver URLs may not carry credentials';
      host = u.hostname.replace(/^\[|\]$/g, '');
    } catch {
      return 'the receiver URL is not a URL';
    }
    if (this.allowPrivate) return null;
    const cached = this.cache.get(host);
    if (cached && cached.until > Date.now()) return cached.ok ? null : cached.reason;
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
      } catch (e) {
        // An unresolvable host is a delivery failure, not an unsafe target.
        void e;
        return null;
      }
    }
    const bad = addresses.find(isPrivateAddress);
    const reason = bad ? `the receiver host '${host}' resolves to ${bad}, a private, loopback or link-local address (set allowPrivateTargets or METERHUB_ALLOW_PRIVATE_TARGETS=1 to allow it)` : '';
    this.cache.set(host, { ok: !bad, reason, until: Date.now() + this.ttlMs });
    return bad ? reason : null;
  }
}
