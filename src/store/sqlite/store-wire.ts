/** What ThreadedSqliteStore and its worker (store-worker.ts) send each other. */
import type { IngestResult } from '../types.ts';

export interface WorkerInit { file: string }

/** [call id, Store method, its arguments]. */
export type WireCall = [number, string, unknown[]];

/** An error, as the worker saw it: `fault` is isStorageFault's verdict there. */
export interface WireError { name: string; message: string; code?: string; fault: boolean }

/** [call id, true, value] or [call id, false, error]. */
export type WireReply = [number, true, unknown] | [number, false, WireError];

/** commitMessages' answer per message: an accepted one as [kind, sequence, receivers], the rest whole. */
export type WireIngestResult = ['accepted', number, string[]] | Exclude<IngestResult, { kind: 'accepted' }>;
