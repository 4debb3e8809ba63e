import type { AttemptRecord, DeliveryRecord, MessageRecord } from '../store/types.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function deliveryView(d: DeliveryRecord) {
  return {
    delivery: d.id,
    receiver: d.receiver,
    mode: d.mode,
    state: d.state,
    attempts: d.attempts,
    lastAttemptAt: iso(d.lastAttemptAt),
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    nextAttemptAt: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
    deliveredAt: iso(d.deliveredAt),
    deadAt: iso(d.deadAt),
    resend: d.resendOf !== null,
    webhookId: d.webhookId,
  };
}

export function messageView(m: MessageRecord, deliveries: DeliveryRecord[]) {
  return {
    sequence: m.sequence,
    id: m.id,
    source: m.source,
    type: m.type,
    subject: m.subject,
    time: m.time,
    attributes: m.attributes,
    contentType: m.contentType,
    receivedAt: iso(m.receivedAt),
    size: m.size,
    sha256: m.sha256,
    deliveries: deliveries.map(deliveryView),
  };
}

export function attemptView(a: AttemptRecord) {
  return { receiver: a.receiver, at: iso(a.startedAt), outcome: a.outcome, status: a.status, latencyMs: a.latencyMs, error: a.error };
}
