/** The store cannot take writes (disk full, read-only, I/O error, locked): answer 503, never 202. */
export class StorageUnavailableError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'StorageUnavailableError';
  }
}

const FAULT_CODES = /^(SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|CORRUPT|NOTADB|PROTOCOL|NOMEM)|ENOSPC|EROFS|EIO|EDQUOT|EACCES|EPERM|EMFILE|ENFILE)/;

/** True for errors of the storage itself, as opposed to a bad operation. */
export function isStorageFault(error: unknown): boolean {
  if (error instanceof StorageUnavailableError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && FAULT_CODES.test(code);
}
