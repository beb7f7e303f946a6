import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createClient } from 'redis';
import { redactUrl } from '../index.js';

/** Where the CLI writes; tests pass collectors, `main.ts` passes the process streams. */
export type CliOutput = {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Whether `err` is a terminal (progress bars are drawn only then). */
  interactive: boolean;
};

/** What every command knows: where Redis and the service are, and the key prefix. */
export type CliContext = CliOutput & {
  /** Redis URL, password included: never print it, print {@link CliContext.redisEndpoint}. */
  redisUrl: string;
  /** `redisUrl` with credentials redacted, and where it came from. */
  redisEndpoint: string;
  /** Larder's `environment` (the service's `LARDER_ENV`), or `undefined` for none. */
  environment: string | undefined;
  /** Larder's key prefix. */
  prefix: string;
  /** Root URL of a running service, for `stats` and `health`. */
  serviceUrl: string;
  /** Print JSON instead of text. */
  json: boolean;
};

/** A usage mistake: printed with the hint to run `larder help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

// Written by the service's private redis-server (src/server/redis/private-redis-server.ts).
const PRIVATE_REDIS_URL_FILE = join('redis', 'redis-server.url');

/**
 * Where Redis is, in the order the service reads it: `--url`, `REDIS_URL`, `REDIS_HOST`/`REDIS_PORT`
 * (+ `REDIS_PASSWORD`, `REDIS_DB`, `REDIS_TLS`), the private redis-server a service without Redis
 * started (`<DATA_DIR>/redis/redis-server.url`), and last `redis://127.0.0.1:6379`.
 */
export function resolveRedisUrl(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { url: string; source: string } {
  const read = (name: string) => (env[name]?.trim() === '' ? undefined : env[name]?.trim());
  if (flag !== undefined) return { url: checkedUrl(flag, '--url'), source: '--url' };
  const url = read('REDIS_URL');
  if (url !== undefined) return { url: checkedUrl(url, 'REDIS_URL'), source: 'REDIS_URL' };
  const host = read('REDIS_HOST');
  const port = read('REDIS_PORT');
  if (host !== undefined || port !== undefined) {
    const target = new URL(`${read('REDIS_TLS') === 'true' ? 'rediss' : 'redis'}://127.0.0.1`);
    target.hostname = host ?? '127.0.0.1';
    target.port = port ?? '6379';
    target.pathname = `/${read('REDIS_DB') ?? '0'}`;
    const password = read('REDIS_PASSWORD');
    if (password !== undefined) target.password = password;
    return { url: checkedUrl(target.toString(), 'REDIS_HOST/REDIS_PORT'), source: 'REDIS_HOST/REDIS_PORT' };
  }
  const file = resolve(read('DATA_DIR') ?? 'data', PRIVATE_REDIS_URL_FILE);
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored !== '')
      return { url: checkedUrl(stored, file), source: `the service's private redis-server (${file})` };
  } catch {
    // no private server running from this folder
  }
  return { url: 'redis://127.0.0.1:6379', source: 'default' };
}

function checkedUrl(value: string, from: string): string {
  if (!/^rediss?:\/\/[^/]/.test(value) || !URL.canParse(value)) {
    throw new UsageError(
      `${from}: expected a redis:// or rediss:// URL, got ${JSON.stringify(redactUrl(value))}`,
    );
  }
  return value;
}

/** A node-redis client of the CLI: fails fast (no reconnection, no offline queue). */
export type CliRedis = ReturnType<typeof createCliClient>;

function createCliClient(url: string) {
  return createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: false },
  });
}

const CONNECT_TIMEOUT_MS = 3000;

/**
 * Connects to Redis, runs `fn`, and disconnects.
 * @throws Error naming the endpoint (credentials redacted) when Redis cannot be reached.
 */
export async function withRedis<T>(ctx: CliContext, fn: (client: CliRedis) => Promise<T>): Promise<T> {
  const client = createCliClient(ctx.redisUrl);
  let lastError: unknown;
  client.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    await client.connect();
  } catch (error) {
    const detail = ((lastError ?? error) as Error).message ?? String(error);
    throw new Error(`cannot reach Redis at ${ctx.redisEndpoint}: ${detail}`, { cause: error });
  }
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** Fetches JSON from the running service; `undefined` when it does not answer. */
export async function fetchService(ctx: CliContext, path: string): Promise<unknown> {
  try {
    const res = await fetch(new URL(path, ctx.serviceUrl), { signal: AbortSignal.timeout(2000) });
    return await res.json();
  } catch {
    return undefined;
  }
}

/** Fields of an `INFO` section reply, as strings. */
export function parseInfo(info: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of info.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1);
  }
  return fields;
}
