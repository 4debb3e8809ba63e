import { request } from 'undici';

export interface ClientOptions { url: string; key: string }

export function clientOptions(opts: { url?: string; key?: string }): ClientOptions {
  const url = opts.url ?? process.env.METERHUB_URL ?? 'http://localhost:8080';
  const key = opts.key ?? process.env.METERHUB_KEY;
  if (!key) throw new Error('give the API key with --key or METERHUB_KEY');
  return { url: url.replace(/\/+$/, ''), key };
}

/** One call to the hub's API; answers the status and the parsed JSON (or text). */
export async function call(c: ClientOptions, method: string, path: string, body?: { contentType: string; data: string | Buffer | NodeJS.ReadableStream }, headers: Record<string, string> = {}) {
  const res = await request(c.url + path, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${c.key}`, ...(body ? { 'content-type': body.contentType } : {}), ...headers },
    body: body?.data as string | Buffer | undefined,
  });
  const text = await res.body.text();
  let json: unknown = text;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, json };
}

export function describeProblem(json: unknown): string {
  const p = json as { title?: string; detail?: string; status?: number } | null;
  return p && typeof p === 'object' && p.detail ? `${p.status} ${p.title}: ${p.detail}` : JSON.stringify(json);
}
