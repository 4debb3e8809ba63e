/**
 * The stable error codes of the HTTP API. Each code is part of the contract: its problem `type`
 * is `https://meterhub.dev/problems/<code>` and never changes meaning. docs/errors.md documents
 * every one (a test checks that).
 */
export const ERROR_CATALOGUE = {
  'unauthorized': { status: 401, title: 'Missing or unknown API key' },
  'forbidden': { status: 403, title: 'This key may not do that' },
  'source-mismatch': { status: 403, title: 'The event source is not the participant of this key' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'malformed-request': { status: 400, title: 'Malformed request' },
  'malformed-json': { status: 400, title: 'The body is not valid JSON' },
  'invalid-event': { status: 400, title: 'The CloudEvent is not valid' },
  'invalid-meter-id': { status: 400, title: 'The meter ID fails its check digit' },
  'invalid-config': { status: 400, title: 'The configuration is not valid' },
  'invalid-csv': { status: 400, title: 'The CSV is not valid' },
  'duplicate-conflict': { status: 409, title: 'The same source and id were accepted before with different content' },
  'payload-too-large': { status: 413, title: 'The body is over the size limit' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'no-route': { status: 422, title: 'No route matches this message' },
  'unsafe-target': { status: 422, title: 'The receiver URL is not an allowed target' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'internal': { status: 500, title: 'Internal error' },
  'storage-unavailable': { status: 503, title: 'Storage is unavailable' },
  'not-primary': { status: 503, title: 'This site is not the primary' },
  'shutting-down': { status: 503, title: 'The hub is shutting down' },
  'request-timeout': { status: 408, title: 'The request took too long' },
  'headers-too-large': { status: 431, title: 'The request headers are too large' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const PROBLEM_TYPE_BASE = 'https://meterhub.dev/problems/';
