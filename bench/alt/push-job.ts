/** One BullMQ job: one accepted event for one receiver. */
export interface PushJob {
  receiver: string;
  /** The event's context attributes (everything but `data`), for the ce- headers. */
  attributes: Record<string, string | number | boolean>;
  /** The body POSTed to the receiver: the event's `data` serialised, or its `data_base64`. */
  data: string;
  base64?: true;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Binary-mode CloudEvent headers (CloudEvents HTTP binding: other characters percent-encoded). */
export function cloudEventHeaders(attributes: PushJob['attributes']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'datacontenttype') continue;
    const s = String(value);
    headers[`ce-${name}`] = PRINTABLE.test(s) && !s.includes('%') ? s : encodeURIComponent(s);
  }
  headers['content-type'] = typeof attributes.datacontenttype === 'string' ? attributes.datacontenttype : 'application/json';
  return headers;
}
