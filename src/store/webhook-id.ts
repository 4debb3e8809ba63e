/**
 * The Standard Webhooks `webhook-id` of the delivery of message `sequence` to `receiver`.
 * Every adapter uses this one function, so the id is the same across retries, restarts, sites
 * and storage backends (sequences are unique across sites). A resend keeps the id of the
 * delivery it resends (it is the same message to the same receiver again) and is marked as a
 * resend instead (`meterhub-resend: true` when pushed, `resend: true` in the inbox).
 */
export function webhookIdFor(sequence: number, receiver: string): string {
  return `msg_${sequence}_${receiver}`;
}
