import type { FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HubError } from '../errors/hub-error.ts';
import { checkJsonDocument, JsonShapeError } from '../ingest/json-spans.ts';
import { mediaType, readBody, requireUtf8 } from './body.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Nesting allowed in the hub's own JSON bodies (settings are a few levels deep; server.maxJsonDepth is for CloudEvents). */
export const ADMIN_JSON_DEPTH = 64;

/**
 * A JSON body as the hub's own endpoints read it (admin, inbox, replay, dead-letter queue): UTF-8
 * only (a leading BOM tolerated), not empty, nested at most `maxDepth` levels, no duplicate or
 * `__proto__` members. Anything else is a 400 `malformed-json`, never a silent repair (Fastify's
 * own parser would turn invalid UTF-8 into U+FFFD and let the last of two members win).
 */
export function parseJsonDocument(raw: Buffer, maxDepth: number): unknown {
  const offset = raw.length >= 3 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  let text: string;
  try {
    text = utf8.decode(offset ? raw.subarray(offset) : raw);
  } catch {
    throw new HubError('malformed-json', 'the body is not valid UTF-8');
  }
  if (text.trim().length === 0) throw new HubError('malformed-json', 'the body is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HubError('malformed-json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  try {
    checkJsonDocument(raw, offset, maxDepth);
  } catch (e) {
    if (e instanceof JsonShapeError) throw new HubError('malformed-json', e.message);
    throw e;
  }
  return value;
}

/** Fastify content-type parser for application/json on the hub's own endpoints. */
export function jsonBodyParser(opts: { maxDepth: number; bodyLimitBytes: number }) {
  return async (request: FastifyRequest, payload: Readable): Promise<unknown> => {
    requireUtf8(mediaType(request.headers['content-type'])?.charset ?? null);
    return parseJsonDocument(await readBody(payload, opts.bodyLimitBytes), opts.maxDepth);
  };
}
