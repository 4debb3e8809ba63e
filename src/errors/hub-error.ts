import { ERROR_CATALOGUE, PROBLEM_TYPE_BASE, type ErrorCode } from './catalogue.ts';

/** An error the API answers with: a catalogue code, a human detail, and optional extra members. */
export class HubError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extra: Record<string, unknown> | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, detail: string, opts: { extra?: Record<string, unknown>; retryAfterSeconds?: number } = {}) {
    super(detail);
    this.name = 'HubError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.extra = opts.extra;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }

  toProblem(instance?: string): Problem {
    return problemOf(this.code, this.message, instance, this.extra);
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extra: string]: unknown;
}

export function problemOf(code: ErrorCode, detail: string, instance?: string, extra?: Record<string, unknown>): Problem {
  const entry = ERROR_CATALOGUE[code];
  const problem: Problem = { ...extra, type: PROBLEM_TYPE_BASE + code, title: entry.title, status: entry.status, detail, code };
  if (instance !== undefined) problem.instance = instance;
  return problem;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
