import type { Caller } from '../auth/authenticator.ts';
import { messageView } from '../status/views.ts';
import { viewerOf, visibleDeliveries } from '../status/visibility.ts';
import type { Store } from '../store/store.ts';
import type { DeliveryRecord, DeliveryState, MessageFilter } from '../store/types.ts';
import { cursorParam, encodeCursor, enumParam, limitParam, participantParam, textParam, timeRange } from './search-params.ts';

export const SEARCH_CURSOR = 'm1';
const STATES = ['pending', 'delivering', 'delivered', 'dead'] as const;

export interface SearchQuery extends MessageFilter {
  receiver?: string;
  state?: DeliveryState;
  after?: number;
  order: 'asc' | 'desc';
  limit: number;
}

/** `GET /v1/messages?subject=&type=&source=&receiver=&state=&from=&to=&after=&limit=&order=` (from/to on receivedAt). */
export function parseSearchQuery(query: Record<string, unknown>): SearchQuery {
  const q: SearchQuery = { order: enumParam(query, 'order', ['asc', 'desc'] as const) ?? 'desc', limit: limitParam(query), ...timeRange(query) };
  for (const name of ['subject', 'type', 'source'] as const) {
    const v = textParam(query, name);
    if (v !== undefined) q[name] = v;
  }
  const receiver = participantParam(query, 'receiver');
  if (receiver !== undefined) q.receiver = receiver;
  const state = enumParam(query, 'state', STATES);
  if (state !== undefined) q.state = state;
  const cursor = cursorParam(query, SEARCH_CURSOR, 1);
  if (cursor) q.after = cursor[0]!;
  return q;
}

/**
 * One page of the archive as the caller may see it (invariant 7): each message with the
 * deliveries the caller may see. `next` continues after the last message of the page (null
 * when the page is empty); a page shorter than `limit` is the last one for now, and in asc
 * order the same `next` picks up messages accepted later (sequences commit in order).
 */
export async function searchArchive(store: Store, caller: Caller, q: SearchQuery) {
  const messages = await store.searchMessages({ ...q, viewer: viewerOf(caller) });
  const bySequence = new Map<number, DeliveryRecord[]>();
  for (const d of await store.getDeliveriesOf(messages.map((m) => m.sequence))) {
    const list = bySequence.get(d.sequence);
    if (list) list.push(d); else bySequence.set(d.sequence, [d]);
  }
  const last = messages.at(-1);
  return {
    messages: messages.map((m) => messageView(m, visibleDeliveries(caller, m, bySequence.get(m.sequence) ?? []) ?? [])),
    next: last ? encodeCursor(SEARCH_CURSOR, [last.sequence]) : null,
  };
}
