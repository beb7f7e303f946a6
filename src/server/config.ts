import { resolve } from 'node:path';
import { type RedisConnection, redactUrl } from '../index.js';
import type { DatabaseTarget } from './db/database.js';

/**
 * Whether the service uses Redis: `configured` (a target was given), `private` (none was given, and
 * `main.ts` started a `redis-server` of its own), `disabled` (the kill switch `REDIS_ENABLED=false`
 * is set) or `not-configured` (no Redis variable at all, and no private server).
 */
export type RedisMode = 'configured' | 'private' | 'disabled' | 'not-configured';

/** Where the service connects to Redis. Secrets stay behind {@link RedisTarget.connection}. */
export type RedisTarget = {
  /** The connection target with credentials redacted, safe to log and to return from health routes. */
  readonly endpoint: string;
  /**
   * The connection options for `createCache`, password included. A function rather than a field so
   * that logging or serializing the config (JSON, `util.inspect`) never prints the password.
   */
  readonly connection: () => RedisConnection;
};

/** The service's configuration, read once from the environment by {@link loadConfig}. */
export type ServerConfig = {
  /** Interface to listen on. @default '127.0.0.1' */
  readonly host: string;
  /** TCP port to listen on; `0` picks a free one. @default 3000 */
  readonly port: number;
  /** Larder's `environment` key segment, so environments sharing a Redis never meet. @default 'development' */
  readonly environment: string;
  readonly redisMode: RedisMode;
  /** A sentence saying why Redis is used or not, for logs and health output. Never holds secrets. */
  readonly redisReason: string;
  /** Present exactly when `redisMode` is `configured` or `private`. */
  readonly redis: RedisTarget | undefined;
  /** Folder of the service's local state (PGlite's files go in `<dataDir>/pglite`). @default '<cwd>/data' */
  readonly dataDir: string;
  /** Postgres at `DATABASE_URL`, else PGlite in `<dataDir>/pglite`. */
  readonly database: DatabaseTarget;
  /**
   * Fill an empty database (no leads) with demo data at start.
   * @default true with PGlite, false with DATABASE_URL
   */
  readonly seedDemoData: boolean;
  /**
   * The admin token (`LARDER_ADMIN_TOKEN`) that admin routes require; a function so that logging the
   * config never prints it. `undefined` when unset: `main.ts` then generates one at first start
   * (see `auth/admin-token.ts`), and an app built without one refuses every admin call.
   */
  readonly adminToken: (() => string) | undefined;
  /**
   * Start a private `redis-server` (from PATH) when no Redis is configured (`PRIVATE_REDIS`).
   * @default true
   */
  readonly privateRedis: boolean;
};

/** A variable of the environment has a value the service cannot use. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The environment variable at fault, e.g. `PORT`. */
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(message);
    this.variable = variable;
  }
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
// Larder accepts these characters in a key segment (`environment` option); checked here so that a bad
// LARDER_ENV is reported under its own name rather than as an invalid createCache option.
const ENVIRONMENT_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads the service configuration from `env` (pass `process.env`). Empty strings count as unset.
 *
 * Variables: `PORT` (default 3000), `HOST` (default 127.0.0.1), `LARDER_ENV` (default development),
 * `REDIS_URL`, or `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD` / `REDIS_DB` / `REDIS_TLS`, and
 * `REDIS_ENABLED` (`false`, `0`, `no` or `off` turn Redis off whatever else is set); `DATA_DIR`
 * (default `./data`), `DATABASE_URL` (`postgres://`; PGlite in `DATA_DIR` without it) and
 * `SEED_DEMO_DATA` (default on for PGlite, off for `DATABASE_URL`); `LARDER_ADMIN_TOKEN` (16+ characters);
 * `PRIVATE_REDIS` (default on: `main.ts` starts a redis-server when no Redis is configured).
 * @throws ConfigError naming the variable and the value it got.
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: NodeJS.ProcessEnv): ServerConfig {
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };

  const port = integer('PORT', read('PORT'), 0, 65535) ?? 3000;
  const host = read('HOST') ?? '127.0.0.1';
  const environment = read('LARDER_ENV') ?? 'development';
  if (!ENVIRONMENT_PATTERN.test(environment)) {
    throw new ConfigError(
      'LARDER_ENV',
      `Invalid LARDER_ENV: expected 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(environment)}`,
    );
  }

  const enabled = flag('REDIS_ENABLED', read('REDIS_ENABLED'));
  const url = read('REDIS_URL');
  const redisHost = read('REDIS_HOST');
  const redisPort = integer('REDIS_PORT', read('REDIS_PORT'), 1, 65535);
  const db = integer('REDIS_DB', read('REDIS_DB'), 0, Number.MAX_SAFE_INTEGER);
  const tls = flag('REDIS_TLS', read('REDIS_TLS'));
  const password = read('REDIS_PASSWORD');

  if (url !== undefined && !isRedisUrl(url)) {
    throw new ConfigError(
      'REDIS_URL',
      `Invalid REDIS_URL: expected a redis:// or rediss:// URL, got ${JSON.stringify(url.includes('@') ? redactUrl(url) : url)}`,
    );
  }
  const fieldsGiven = ['REDIS_HOST', 'REDIS_PORT', 'REDIS_DB', 'REDIS_TLS'].filter(
    (n) => read(n) !== undefined,
  );
  if (url !== undefined && fieldsGiven.length > 0) {
    throw new ConfigError(
      fieldsGiven[0] as string,
      `Set either REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_DB/REDIS_TLS, not both (got REDIS_URL and ${fieldsGiven.join(', ')})`,
    );
  }

  const dataDir = resolve(read('DATA_DIR') ?? 'data');
  const database = databaseTarget(read('DATABASE_URL'), dataDir);
  const seedDemoData = flag('SEED_DEMO_DATA', read('SEED_DEMO_DATA')) ?? database.engine === 'pglite';
  const adminToken = adminTokenFrom(read('LARDER_ADMIN_TOKEN'));
  const privateRedis = flag('PRIVATE_REDIS', read('PRIVATE_REDIS')) ?? true;
  const base = { host, port, environment, dataDir, database, seedDemoData, adminToken, privateRedis };
  if (enabled === false) {
    return {
      ...base,
      redisMode: 'disabled',
      redisReason: `Redis is disabled by REDIS_ENABLED=${read('REDIS_ENABLED')}: the service runs memory-only`,
      redis: undefined,
    };
  }
  if (url === undefined && redisHost === undefined && redisPort === undefined) {
    return {
      ...base,
      redisMode: 'not-configured',
      redisReason:
        'Redis is not configured (set REDIS_URL or REDIS_HOST/REDIS_PORT): the service runs memory-only',
      redis: undefined,
    };
  }

  const connection: RedisConnection =
    url !== undefined
      ? { url: withPassword(url, password) }
      : { host: redisHost ?? '127.0.0.1', port: redisPort ?? 6379, db: db ?? 0, tls: tls ?? false, password };
  const endpoint = redactUrl(connection.url ?? describeTarget(connection));
  return {
    ...base,
    redisMode: 'configured',
    redisReason: `Redis is configured at ${endpoint}`,
    redis: { endpoint, connection: () => ({ ...connection }) },
  };
}

/**
 * The config of a service that started a private `redis-server` at `url` (no password, loopback)
 * because none was configured.
 */
export function withPrivateRedis(config: ServerConfig, url: string): ServerConfig {
  return {
    ...config,
    redisMode: 'private',
    redisReason: `Redis is a private redis-server the service started at ${url} (no REDIS_URL set; PRIVATE_REDIS=false turns this off)`,
    redis: { endpoint: url, connection: () => ({ url }) },
  };
}

/** Postgres when `DATABASE_URL` is set, else PGlite in `<dataDir>/pglite`. */
function databaseTarget(url: string | undefined, dataDir: string): DatabaseTarget {
  if (url === undefined) return { engine: 'pglite', dataDir: resolve(dataDir, 'pglite') };
  if (!/^postgres(?:ql)?:\/\/./.test(url) || !URL.canParse(url)) {
    throw new ConfigError(
      'DATABASE_URL',
      `Invalid DATABASE_URL: expected a postgres:// or postgresql:// URL, got ${JSON.stringify(url.includes('@') ? redactUrl(url) : url)}`,
    );
  }
  return { engine: 'postgres', endpoint: redactUrl(url), connectionString: () => url };
}

// Short tokens can be guessed; generated ones are 43 characters (32 random bytes, base64url).
const MIN_ADMIN_TOKEN_LENGTH = 16;

function adminTokenFrom(value: string | undefined): (() => string) | undefined {
  if (value === undefined) return undefined;
  if (value.length < MIN_ADMIN_TOKEN_LENGTH || /\s/.test(value)) {
    // The value is a secret: the message says what is wrong with it without echoing it.
    throw new ConfigError(
      'LARDER_ADMIN_TOKEN',
      `Invalid LARDER_ADMIN_TOKEN: expected at least ${MIN_ADMIN_TOKEN_LENGTH} characters without whitespace, got ${value.length} characters`,
    );
  }
  return () => value;
}

function isRedisUrl(value: string): boolean {
  return /^rediss?:\/\/[^/]/.test(value) && URL.canParse(value);
}

/** Parses a whole decimal number within bounds; `undefined` when unset. */
function integer(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new ConfigError(
      name,
      `Invalid ${name}: expected an integer ${range}, got ${JSON.stringify(value)}`,
    );
  }
  return parsed;
}

/** Parses a boolean word; `undefined` when unset. */
function flag(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const word = value.toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  // A typo such as `REDIS_ENABLED=flase` must not silently leave Redis on (or off).
  throw new ConfigError(
    name,
    `Invalid ${name}: expected true/false, 1/0, yes/no or on/off, got ${JSON.stringify(value)}`,
  );
}

/** Puts `REDIS_PASSWORD` into a URL that has none, so that both can be set separately. */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const parsed = new URL(url);
  if (parsed.password !== '') return url;
  parsed.password = password;
  return parsed.toString();
}

function describeTarget(c: RedisConnection): string {
  const auth = c.password === undefined ? '' : ':***@';
  return `${c.tls ? 'rediss' : 'redis'}://${auth}${c.host}:${c.port}/${c.db}`;
}
