import type { Caller } from '../auth/authenticator.ts';
import type { DeliveryRecord, MessageRecord } from '../store/types.ts';

/**
 * Which of a message's deliveries a caller may see (invariant 7): an admin and the message's
 * sender all of them, a receiver only its own. An empty answer means the message is not the
 * caller's to see at all (answer 404, as if it did not exist).
 */
export function visibleDeliveries(caller: Caller, message: MessageRecord, deliveries: DeliveryRecord[]): DeliveryRecord[] | null {
  if (caller.kind === 'admin' || message.source === caller.participant) return deliveries;
  const own = deliveries.filter((d) => d.receiver === caller.participant);
  return own.length > 0 ? own : null;
}

/** The participant a search is limited to, or null for an admin. */
export function viewerOf(caller: Caller): string | null {
  return caller.kind === 'admin' ? null : caller.participant;
}
