import { HubError } from '../../errors/hub-error.ts';
import { StorageUnavailableError } from '../storage-error.ts';

/*
 * Which PostgreSQL errors are the storage failing (answer 503, nothing kept) rather than a bad
 * operation (a duplicate key, a value PostgreSQL refuses), which fails alone.
 */

// SQLSTATE classes and codes of the server or the connection failing, not of the statement:
//   08 connection exception, 53 insufficient resources (53100 disk full, 53200 out of memory,
//   53300 too many connections), 57P01-57P05 shutdown / cannot connect now / idle timeout,
//   58 system error (58030 I/O error), XX internal error / data corrupted, 25006 read-only
//   transaction (a standby or default_transaction_read_only), 55P03 lock_timeout (a lock held
//   too long by another hub: refuse rather than hang), 57014 statement cancelled (statement or
//   query timeout), 25P03 idle-in-transaction timeout, 3D000 no such database, 28 auth failed.
const FAULT_SQLSTATE = /^(08|53|58|XX|57P0[1-5]|25006|25P03|55P03|57014|3D000|28)/;

// Node and pg client errors: the socket, DNS, or the pool giving up.
const FAULT_ERRNO = /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ENOENT|EACCES)$/;
const FAULT_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed|not queryable|Query read timeout/i;

/** SQLSTATEs after which the whole transaction may simply be run again (no one else saw any of it). */
const RETRY_SQLSTATE = /^(40001|40P01)$/;

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for errors of the storage itself (connection, disk, read-only, shutdown), as opposed to a bad operation. */
export function isPgStorageFault(error: unknown): boolean {
  if (error instanceof StorageUnavailableError) return true;
  const code = codeOf(error);
  if (code !== undefined && (FAULT_SQLSTATE.test(code) || FAULT_ERRNO.test(code))) return true;
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && FAULT_MESSAGE.test(message);
}

/** A deadlock or serialization failure: the transaction was rolled back and may be retried whole. */
export function isRetryable(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && RETRY_SQLSTATE.test(code);
}

export function unavailable(error: unknown): StorageUnavailableError {
  if (error instanceof StorageUnavailableError) return error;
  const message = (error as { message?: unknown } | null)?.message;
  return new StorageUnavailableError(`PostgreSQL unavailable: ${typeof message === 'string' && message ? message : String(error)}`, { cause: error });
}

/**
 * A value PostgreSQL text cannot hold: the NUL character (22021 "invalid byte sequence for
 * encoding UTF8: 0x00"; 22P05 for a \u0000 escape in json). The embedded store takes it; here it
 * is the caller's input that cannot be stored or looked up (a search for a subject holding NUL,
 * a participant name, a lease token), answered 400 rather than 500.
 */
export function isUnstorableText(error: unknown): boolean {
  const code = codeOf(error);
  return code === '22021' || code === '22P05';
}

/**
 * A storage fault becomes StorageUnavailableError, a value PostgreSQL text cannot hold a 400
 * `malformed-request`; anything else is passed on as it is.
 */
export function mapError(error: unknown): unknown {
  if (isPgStorageFault(error)) return unavailable(error);
  if (isUnstorableText(error)) return new HubError('malformed-request', 'a text value holds the NUL character (U+0000), which the hub\'s database (PostgreSQL) cannot store or look up');
  return error;
}
