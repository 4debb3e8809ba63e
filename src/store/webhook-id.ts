/**
 * The Standard Webhooks `webhook-id` of the delivery of message `sequence` to `receiver`.
 * Every adapter uses this one function, so the id is the same across retries, restarts, sites
 * and storage backends (sequences are unique across sites). Resends get their own id from the
 * resend's delivery, never this one.
 */
export function webhookIdFor(sequence: number, receiver: string): string {
  return `msg_${sequence}_${receiver}`;
}
