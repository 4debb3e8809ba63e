import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (child processes run there so that `--import tsx` resolves). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const live = new Set<ChildProcess>();
let hooked = false;

/** Every child still running is killed when this process exits, however it exits. */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of live) c.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export interface Child {
  name: string;
  proc: ChildProcess;
  /** The regular expression match of the readiness line. */
  ready: RegExpMatchArray;
  /** The last lines the child printed (stdout and stderr), for error reports. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** A line on stdout matching this means the child is ready. */
  ready: RegExp;
  timeoutMs?: number;
  /** Node options before `--import tsx` (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** Starts `node --import tsx script ...args` in the repository root and waits for its readiness line. */
export function spawnTs(name: string, script: string, args: string[], opts: SpawnOptions): Promise<Child> {
  hookExit();
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  const tail: string[] = [];
  const remember = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line) tail.push(line);
    if (tail.length > 200) tail.splice(0, tail.length - 200);
  };
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => {
    live.delete(proc);
    resolve(code ?? (signal ? 128 : null));
  }));
  const output = () => tail.join('\n');

  return new Promise<Child>((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${name} did not become ready in ${opts.timeoutMs ?? 20_000} ms`)), opts.timeoutMs ?? 20_000);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(new Error(`${err.message}\n--- ${name} output ---\n${output()}`));
    };
    proc.stderr!.on('data', remember);
    proc.stdout!.on('data', (chunk: Buffer) => {
      remember(chunk);
      if (settled) return;
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = opts.ready.exec(line);
        if (m) {
          settled = true;
          clearTimeout(timer);
          resolve({
            name, proc, ready: m, output,
            async stop(graceMs = 10_000) {
              if (proc.exitCode !== null || proc.signalCode !== null) return exited;
              proc.kill('SIGTERM');
              const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
              const code = await exited;
              clearTimeout(killer);
              return code;
            },
          });
          return;
        }
      }
    });
    proc.once('error', (err) => fail(err));
    void exited.then((code) => fail(new Error(`${name} exited with ${code} before it was ready`)));
  });
}

/** Runs `node --import tsx script ...args` in the repository root to completion (killed with this process if it exits first). */
export function runTs(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  hookExit();
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
  proc.stderr!.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    proc.once('error', (err) => { clearTimeout(timer); live.delete(proc); reject(err); });
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code: code ?? (signal ? 128 : null), stdout, stderr });
    });
  });
}
