// Starts a real usergraph server for a test file: the binary the tests built (or
// $USERGRAPH_BIN), a fresh data directory, a free loopback port, and SQLite or, when
// $E2E_DATABASE_URL names a PostgreSQL server, a fresh database on it. An administrator
// exists from the start.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN = { email: 'owner@e2e.example', password: 'only the test suite knows this one' };

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

function psql(url, sql) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { stdio: 'pipe' });
}

export async function startServer() {
  const bin = process.env.USERGRAPH_BIN ?? path.join(ROOT, 'target', 'debug', 'usergraph');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'usergraph-e2e-'));
  const port = await freePort();
  const env = {
    ...process.env,
    USERGRAPH_DATA_DIR: dir,
    USERGRAPH_LISTEN: `127.0.0.1:${port}`,
    USERGRAPH_LOG: 'warn',
    // Cheap hashing keeps the suite quick; production keeps OWASP's defaults.
    USERGRAPH_ARGON2_MEMORY_KIB: '64',
    USERGRAPH_ARGON2_ITERATIONS: '1',
  };
  delete env.DATABASE_URL;
  let dropDatabase = () => {};
  const server = process.env.E2E_DATABASE_URL;
  if (server) {
    const name = `usergraph_e2e_${process.pid}_${port}`;
    psql(server, `CREATE DATABASE ${name}`);
    const url = new URL(server);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.href;
    dropDatabase = () => psql(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
  execFileSync(bin, ['admin', 'create', '--email', ADMIN.email, '--password', ADMIN.password],
    { env, stdio: 'pipe' });
  const first = await launch(bin, env);
  const twins = [];
  return {
    ...first,
    backend: server ? 'postgres' : 'sqlite',
    // A second instance on the same database and data directory (so the same signing
    // key), as behind a load balancer.
    async twin() {
      const twin = await launch(bin, { ...env, USERGRAPH_LISTEN: `127.0.0.1:${await freePort()}` });
      twins.push(twin);
      return twin;
    },
    async stop() {
      for (const instance of [...twins, first]) await instance.stop();
      dropDatabase();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/// Starts `usergraph serve` with `env` and waits until it answers.
async function launch(bin, env) {
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const origin = `http://${env.USERGRAPH_LISTEN}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${origin}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 200 || child.exitCode !== null) throw new Error('usergraph did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    origin,
    url: `${origin}/graphql`,
    socket: `ws://${env.USERGRAPH_LISTEN}/graphql/ws`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

/// POSTs one operation; returns the parsed answer.
export async function post(url, query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return response.json();
}
