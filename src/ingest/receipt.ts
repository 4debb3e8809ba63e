import type { MessageRecord } from '../store/types.ts';

export interface Receipt {
  sequence: number;
  id: string;
  source: string;
  receivedAt: string;
  receivers: string[];
}

export function receiptOf(message: MessageRecord, receivers: string[]): Receipt {
  return { sequence: message.sequence, id: message.id, source: message.source, receivedAt: new Date(message.receivedAt).toISOString(), receivers };
}
