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

/**
 * OpenAI's Assistants API, used to create assistants when `OPENAI_API_KEY` is set. The key stays
 * behind {@link OpenAIConfig.apiKey}, like the Redis password.
 */
export type OpenAIConfig = {
  /** API root without a trailing slash. @default 'https://api.openai.com/v1' */
  readonly baseUrl: string;
  /** Model of the assistants created. @default 'gpt-4o-mini' */
  readonly model: string;
  /** How long one API call may take, in milliseconds. @default 20000 */
  readonly timeoutMs: number;
  /** The API key; a function so that logging or serializing the config never prints it. */
  readonly apiKey: () => string;
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
  /** OpenAI's Assistants API when `OPENAI_API_KEY` is set; otherwise assistants are created locally. */
  readonly openai: OpenAIConfig | undefined;
  /**
   * Root of the demo URLs handed out for prototypes (`<demoBaseUrl>/<slug>`), no trailing slash.
   * @default `http://<host>:<port>/demo` (`localhost` for a wildcard host; `/demo` with port 0)
   */
  readonly demoBaseUrl: string;
  /**
   * The admin token (`LARDER_ADMIN_TOKEN`) that admin routes require; a function so that logging the
   * config never prints it. `undefined` when unset: `main.ts` then generates one at first start
   * (see `auth/admin-token.ts`), and an app built without one refuses every admin call.
   */
  readonly adminToken: (() => string) | undefined;
  /**
   * The session cookie signing secret (`SESSION_SECRET`, 32+ characters), a function like
   * `adminToken`. `undefined` when unset: one is derived from the admin token.
   */
  readonly sessionSecret: (() => string) | undefined;
  /** Send the session cookie with `Secure` (`SESSION_COOKIE_SECURE`; behind HTTPS). @default false */
  readonly sessionCookieSecure: boolean;
  /**
   * Start a private `redis-server` (from PATH) when no Redis is configured (`PRIVATE_REDIS`).
   * @default true
   */
  readonly privateRedis: boolean;
  /** Rate limiting of the public API (`RATE_LIMIT_*`; see `rate-limit/`). */
  readonly rateLimit: RateLimitConfig;
};

/** Rate limits of the public API, per minute. */
export type RateLimitConfig = {
  /** `RATE_LIMIT_ENABLED`. @default true */
  readonly enabled: boolean;
  /** Requests per minute from one client IP (`RATE_LIMIT_PER_IP`). @default 600 */
  readonly perIp: number;
  /** Requests per minute naming one tenant, the `org` of a request (`RATE_LIMIT_PER_TENANT`). @default 3000 */
  readonly perTenant: number;
};

/** Defaults of {@link RateLimitConfig}: generous enough for the demo and the dashboard. */
export const RATE_LIMIT_DEFAULTS = { perIp: 600, perTenant: 3000 } as const;
// Upper bound of RATE_LIMIT_PER_IP and RATE_LIMIT_PER_TENANT.
const MAX_RATE_LIMIT = 1_000_000;

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
const MODEL_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * Reads the service configuration from `env` (pass `process.env`). Empty strings count as unset.
 *
 * Prototypes: `OPENAI_API_KEY` (assistants are created locally without it), `OPENAI_BASE_URL`,
 * `OPENAI_MODEL`, `OPENAI_TIMEOUT_MS` and `DEMO_BASE_URL`.
 *
 * Variables: `PORT` (default 3000), `HOST` (default 127.0.0.1), `LARDER_ENV` (default development),
 * `REDIS_URL`, or `REDIS_HOST` / `REDIS_PORT` / `REDIS_PASSWORD` / `REDIS_DB` / `REDIS_TLS`, and
 * `REDIS_ENABLED` (`false`, `0`, `no` or `off` turn Redis off whatever else is set); `DATA_DIR`
 * (default `./data`), `DATABASE_URL` (`postgres://`; PGlite in `DATA_DIR` without it) and
 * `SEED_DEMO_DATA` (default on for PGlite, off for `DATABASE_URL`); `LARDER_ADMIN_TOKEN` (16+ characters);
 * `SESSION_SECRET` (32+ characters) and `SESSION_COOKIE_SECURE` (default false); `RATE_LIMIT_ENABLED`
 * (default true), `RATE_LIMIT_PER_IP` (default 600) and `RATE_LIMIT_PER_TENANT` (default 3000), per minute.
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
  const openai = openaiConfig(read);
  const demoBaseUrl = demoBase(read('DEMO_BASE_URL'), host, port);
  const adminToken = adminTokenFrom(read('LARDER_ADMIN_TOKEN'));
  const sessionSecret = sessionSecretFrom(read('SESSION_SECRET'));
  const sessionCookieSecure = flag('SESSION_COOKIE_SECURE', read('SESSION_COOKIE_SECURE')) ?? false;
  const privateRedis = flag('PRIVATE_REDIS', read('PRIVATE_REDIS')) ?? true;
  const rateLimit: RateLimitConfig = {
    enabled: flag('RATE_LIMIT_ENABLED', read('RATE_LIMIT_ENABLED')) ?? true,
    perIp:
      integer('RATE_LIMIT_PER_IP', read('RATE_LIMIT_PER_IP'), 1, MAX_RATE_LIMIT) ?? RATE_LIMIT_DEFAULTS.perIp,
    perTenant:
      integer('RATE_LIMIT_PER_TENANT', read('RATE_LIMIT_PER_TENANT'), 1, MAX_RATE_LIMIT) ??
      RATE_LIMIT_DEFAULTS.perTenant,
  };
  const base = {
    privateRedis,
    rateLimit,
    host,
    port,
    environment,
    dataDir,
    database,
    seedDemoData,
    openai,
    demoBaseUrl,
    adminToken,
    sessionSecret,
    sessionCookieSecure,
  };
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

// @fastify/session refuses shorter signing secrets.
const MIN_SESSION_SECRET_LENGTH = 32;

function sessionSecretFrom(value: string | undefined): (() => string) | undefined {
  if (value === undefined) return undefined;
  if (value.length < MIN_SESSION_SECRET_LENGTH) {
    throw new ConfigError(
      'SESSION_SECRET',
      `Invalid SESSION_SECRET: expected at least ${MIN_SESSION_SECRET_LENGTH} characters, got ${value.length} characters`,
    );
  }
  return () => value;
}

/** OpenAI's settings when `OPENAI_API_KEY` is set; the others are checked either way. */
function openaiConfig(read: (name: string) => string | undefined): OpenAIConfig | undefined {
  const baseUrl = read('OPENAI_BASE_URL') ?? 'https://api.openai.com/v1';
  if (!isHttpUrl(baseUrl)) {
    throw new ConfigError(
      'OPENAI_BASE_URL',
      `Invalid OPENAI_BASE_URL: expected an http:// or https:// URL, got ${JSON.stringify(baseUrl.includes('@') ? redactUrl(baseUrl) : baseUrl)}`,
    );
  }
  const model = read('OPENAI_MODEL') ?? 'gpt-4o-mini';
  if (!MODEL_PATTERN.test(model)) {
    throw new ConfigError(
      'OPENAI_MODEL',
      `Invalid OPENAI_MODEL: expected 1 to 100 letters, digits, ".", "_", ":" or "-", got ${JSON.stringify(model)}`,
    );
  }
  const timeoutMs = integer('OPENAI_TIMEOUT_MS', read('OPENAI_TIMEOUT_MS'), 100, 600_000) ?? 20_000;
  const key = read('OPENAI_API_KEY');
  if (key === undefined) return undefined;
  // The value is never quoted: a rejected key may still be a real one.
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new ConfigError(
      'OPENAI_API_KEY',
      'Invalid OPENAI_API_KEY: expected printable ASCII without spaces (the value is not shown)',
    );
  }
  return { baseUrl: baseUrl.replace(/\/+$/, ''), model, timeoutMs, apiKey: () => key };
}

/** `DEMO_BASE_URL` without trailing slashes, or the default built from where the service listens. */
function demoBase(value: string | undefined, host: string, port: number): string {
  if (value !== undefined) {
    if (!isHttpUrl(value)) {
      throw new ConfigError(
        'DEMO_BASE_URL',
        `Invalid DEMO_BASE_URL: expected an http:// or https:// URL, got ${JSON.stringify(value.includes('@') ? redactUrl(value) : value)}`,
      );
    }
    return value.replace(/\/+$/, '');
  }
  if (port === 0) return '/demo';
  const name = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}/demo`;
}

function isHttpUrl(value: string): boolean {
  return /^https?:\/\/[^/]/.test(value) && URL.canParse(value);
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
