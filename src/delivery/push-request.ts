import type { Dispatcher } from 'undici';
import type { MessageRecord } from '../store/types.ts';

const TOKEN_SAFE = /^[\x20-\x7e]*$/;

/** CloudEvents HTTP binding: non-printable-ASCII and '%' in header values are percent-encoded. */
function headerValue(v: string | number | boolean): string {
  const s = String(v);
  return TOKEN_SAFE.test(s) && !s.includes('%') ? s : encodeURIComponent(s);
}

/** The binary-mode CloudEvent headers of a push delivery (signature headers added by the caller). */
export function cloudEventHeaders(message: MessageRecord, resend: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.attributes)) {
    if (name === 'datacontenttype' || value === null || value === undefined) continue;
    headers[`ce-${name}`] = headerValue(value);
  }
  headers['ce-sequence'] = String(message.sequence);
  headers['content-type'] = message.contentType;
  headers['content-length'] = String(message.size);
  headers['user-agent'] = 'meterhub/0.1';
  if (resend) headers['meterhub-resend'] = 'true';
  return headers;
}

export type PushBody = Dispatcher.DispatchOptions['body'];
