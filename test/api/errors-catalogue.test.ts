// Every error code the API can answer with is documented in docs/errors.md, with the same
// status and title, and the documentation names no code the hub does not have.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE, PROBLEM_TYPE_BASE, type ErrorCode } from '../../src/errors/catalogue.ts';
import { HubError } from '../../src/errors/hub-error.ts';
import { toHubError } from '../../src/http/errors.ts';

const DOC = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

/** The table rows of docs/errors.md: | `code` | status | title | when | what to do | */
function documented(): Map<string, { status: number; title: string; when: string; todo: string }> {
  const rows = new Map<string, { status: number; title: string; when: string; todo: string }>();
  for (const line of readFileSync(DOC, 'utf8').split(/\r?\n/)) {
    const m = /^\|\s*`([a-z0-9-]+)`\s*\|\s*(\d{3})\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `'${m[1]}' is documented twice`);
    rows.set(m[1]!, { status: Number(m[2]), title: m[3]!.trim(), when: m[4]!.trim(), todo: m[5]!.trim() });
  }
  return rows;
}

test('docs/errors.md documents every catalogue code with its HTTP status, title, when and what to do', () => {
  const docs = documented();
  assert.ok(docs.size > 0, 'docs/errors.md has a table: | `code` | status | title | when | what to do |');
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    const row = docs.get(code);
    assert.ok(row, `docs/errors.md does not document '${code}'`);
    assert.equal(row.status, entry.status, `'${code}' is documented as ${row.status}, the hub answers ${entry.status}`);
    assert.equal(row.title, entry.title, `the title of '${code}'`);
    assert.ok(row.when.length > 0 && row.todo.length > 0, `'${code}' says when it happens and what to do`);
  }
  for (const code of docs.keys()) assert.ok(code in ERROR_CATALOGUE, `docs/errors.md documents '${code}', which the hub does not have`);
});

test('every catalogue code makes a well-formed problem with a stable type', () => {
  for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
    const p = new HubError(code as ErrorCode, 'detail text').toProblem('/x');
    assert.equal(p.type, `${PROBLEM_TYPE_BASE}${code}`);
    assert.equal(p.status, entry.status);
    assert.equal(p.title, entry.title);
    assert.equal(p.detail, 'detail text');
    assert.ok(entry.status >= 400 && entry.status <= 599);
    assert.equal(JSON.stringify(p).includes('stack'), false);
  }
  // Anything unexpected becomes 'internal' without its message or stack.
  const internal = toHubError(new Error('secret path /etc/shadow at foo.ts:1'));
  assert.equal(internal.code, 'internal');
  assert.doesNotMatch(JSON.stringify(internal.toProblem()), /shadow|foo\.ts/);
});
