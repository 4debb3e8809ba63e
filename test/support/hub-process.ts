import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrlFor } from './test-store.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface HubProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when the process has exited (and was reaped). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL now; resolves once the process is gone. */
  kill9(): Promise<void>;
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The real hub as a child process (`meterhub serve --config <file>`), on a port picked here,
 * started with METERHUB_* variables; resolves once it printed that it is listening.
 *
 * With METERHUB_TEST_STORE=postgres, METERHUB_DATABASE_URL names the data folder's own schema
 * (test-store.ts: a restart on the same `dataDir` finds the same data; dropped at the end of the
 * test file), unless `env` sets METERHUB_DATABASE_URL itself (several hubs on one schema).
 */
export async function startHubProcess(opts: {
  configFile: string; dataDir: string; adminKey: string; env?: Record<string, string>; startTimeoutMs?: number;
}): Promise<HubProcess> {
  const port = await freePort();
  const pg = opts.env?.METERHUB_DATABASE_URL === undefined ? testDatabaseUrlFor(opts.dataDir) : null;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--config', opts.configFile], {
    cwd: ROOT,
    env: {
      ...process.env,
      METERHUB_PORT: String(port),
      METERHUB_HOST: '127.0.0.1',
      METERHUB_DATA_DIR: opts.dataDir,
      METERHUB_ADMIN_KEY: opts.adminKey,
      METERHUB_ALLOW_PRIVATE_TARGETS: '1',
      METERHUB_LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      ...(pg ? { METERHUB_DATABASE_URL: pg.url } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the hub did not start within ${opts.startTimeoutMs ?? 15_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.startTimeoutMs ?? 15_000);
    const onData = () => {
      if (/listening/.test(stdout)) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the hub exited (${code ?? signal}) before listening\nstdout: ${stdout}\nstderr: ${stderr}`));
    });
  });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    output: () => ({ stdout, stderr }),
    exited,
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
