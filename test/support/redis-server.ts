import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Message shown when the binary is missing: the suite fails at once with it. */
export const INSTALL_HINT =
  'redis-server was not found on PATH. The tests run against a real Redis they start themselves. ' +
  'Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS).';

/** Throws with {@link INSTALL_HINT} unless `redis-server` can be run. */
export function assertRedisServerInstalled(): void {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(INSTALL_HINT);
  }
}

/** Arguments of a private redis-server: loopback only, nothing persisted, files in `dir`. */
export function privateServerArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--protected-mode',
    'yes',
  ];
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A private `redis-server` for one test file: loopback only, on a free port, nothing persisted.
 * It never touches the machine's shared Redis on 6379.
 */
export class TestRedisServer {
  readonly port: number;
  readonly #dir: string;
  #process: ChildProcess | undefined;
  #paused = false;

  private constructor(port: number) {
    this.port = port;
    this.#dir = mkdtempSync(join(tmpdir(), 'larder-redis-'));
  }

  /** Starts a server on a free port (or `port`) and waits until it answers PING. */
  static async start(port?: number): Promise<TestRedisServer> {
    assertRedisServerInstalled();
    const server = new TestRedisServer(port ?? (await freePort()));
    await server.#spawn();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /** SIGKILL: the server dies without closing connections gracefully. Waits for the exit. */
  async kill(): Promise<void> {
    const child = this.#process;
    if (child === undefined) return;
    this.#process = undefined;
    if (this.#paused) child.kill('SIGCONT');
    this.#paused = false;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts the server again on the same port (empty: nothing was persisted). */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** SIGSTOP: the server keeps its sockets open but answers nothing, like a stalled Redis. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
    this.#paused = true;
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.#process?.kill('SIGCONT');
    this.#paused = false;
  }

  /** Runs a command through a raw RESP connection (no client library); returns the raw reply. */
  async command(...args: string[]): Promise<string> {
    const socket = connect(this.port, '127.0.0.1');
    await once(socket, 'connect');
    const payload = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    socket.write(payload);
    const [data] = (await once(socket, 'data')) as [Buffer];
    socket.destroy();
    return data.toString('utf8');
  }

  /** Stops the server and removes its folder. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #spawn(): Promise<void> {
    const child = spawn('redis-server', privateServerArgs(this.port, this.#dir), { stdio: 'ignore' });
    this.#process = child;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      if (await answersPing(this.port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    this.#process = undefined;
    throw new Error(`redis-server did not answer PING on 127.0.0.1:${this.port} within 5 s`);
  }
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data: Buffer) => done(data.toString().startsWith('+PONG')));
  });
}
