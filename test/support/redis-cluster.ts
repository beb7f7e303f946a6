import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { assertRedisServerInstalled, freePort, privateServerArgs } from './redis-server.js';

const run = promisify(execFile);

/**
 * A private Redis Cluster for one test file: `size` primaries (no replicas) on free loopback
 * ports, each with its own `nodes-<port>.conf` in a temporary folder, nothing persisted but that
 * cluster configuration, so that {@link restart} brings the same cluster back (empty). Never
 * touches the machine's shared Redis on 6379.
 */
export class TestRedisCluster {
  readonly ports: readonly number[];
  readonly #dir: string;
  #processes: Array<ChildProcess | undefined> = [];
  #paused = false;

  private constructor(ports: number[]) {
    this.ports = ports;
    this.#dir = mkdtempSync(join(tmpdir(), 'larder-cluster-'));
  }

  /** Starts the nodes, joins them with `redis-cli --cluster create`, waits for `cluster_state:ok`. */
  static async start(size = 3): Promise<TestRedisCluster> {
    assertRedisServerInstalled();
    const ports: number[] = [];
    while (ports.length < size) {
      const port = await freeClusterPort();
      if (!ports.includes(port)) ports.push(port);
    }
    const cluster = new TestRedisCluster(ports);
    try {
      await cluster.#spawnAll();
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.#waitForState();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Startup nodes for a client. */
  get nodes(): Array<{ host: string; port: number }> {
    return this.ports.map((port) => ({ host: '127.0.0.1', port }));
  }

  get running(): boolean {
    return this.#processes.some((p) => p !== undefined);
  }

  /** Runs a command on every node through a raw RESP connection; returns the raw replies. */
  async commandOnEach(...args: string[]): Promise<string[]> {
    return Promise.all(this.ports.map((port) => rawCommand(port, args)));
  }

  /** Runs a command on one node. */
  async command(port: number, ...args: string[]): Promise<string> {
    return rawCommand(port, args);
  }

  /** SIGKILL on every node; waits for the exits. */
  async kill(): Promise<void> {
    const children = this.#processes;
    this.#processes = [];
    await Promise.all(
      children.map(async (child) => {
        if (child === undefined) return;
        if (this.#paused) child.kill('SIGCONT');
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    this.#paused = false;
  }

  /** Starts the nodes again on the same ports and configuration; resolves at `cluster_state:ok`. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawnAll();
    await this.#waitForState();
  }

  /** SIGSTOP on every node: sockets stay open, nothing answers. */
  pause(): void {
    for (const child of this.#processes) child?.kill('SIGSTOP');
    this.#paused = true;
  }

  resume(): void {
    for (const child of this.#processes) child?.kill('SIGCONT');
    this.#paused = false;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #spawnAll(): Promise<void> {
    this.#processes = this.ports.map((port) =>
      spawn(
        'redis-server',
        [
          ...privateServerArgs(port, this.#dir),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          // Short, so that restarted nodes agree quickly that the cluster is whole again.
          '--cluster-node-timeout',
          '1000',
        ],
        { stdio: 'ignore' },
      ),
    );
    const deadline = Date.now() + 5000;
    for (const port of this.ports) {
      while (!(await answersPing(port))) {
        if (Date.now() > deadline)
          throw new Error(`cluster node 127.0.0.1:${port} did not answer PING within 5 s`);
        await sleep(20);
      }
    }
  }

  async #waitForState(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const infos = await Promise.all(
        this.ports.map((port) => rawCommand(port, ['CLUSTER', 'INFO']).catch(() => '')),
      );
      if (infos.every((info) => info.includes('cluster_state:ok'))) return;
      await sleep(50);
    }
    throw new Error(`cluster on ports ${this.ports.join(', ')} did not reach cluster_state:ok`);
  }
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await isFree(port + 10000))) return port;
  }
}

async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** One command over a fresh RESP connection; resolves with the whole raw reply. */
async function rawCommand(port: number, args: readonly string[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    let data = '';
    for await (const chunk of socket) {
      data += (chunk as Buffer).toString('utf8');
      if (isComplete(data)) return data;
    }
    return data;
  } finally {
    socket.destroy();
  }
}

/** Whether `data` holds one whole RESP reply of the kinds these commands get (line or bulk). */
function isComplete(data: string): boolean {
  const eol = data.indexOf('\r\n');
  if (eol === -1) return false;
  if (data[0] !== '$') return true;
  const length = Number(data.slice(1, eol));
  return length < 0 || Buffer.byteLength(data) >= eol + 2 + length + 2;
}

async function answersPing(port: number): Promise<boolean> {
  try {
    return (await withTimeout(rawCommand(port, ['PING']), 500)).startsWith('+PONG');
  } catch {
    return false;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
