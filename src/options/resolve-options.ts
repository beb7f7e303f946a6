import { z } from 'zod';
import { describe, ErrorCode, LarderError } from '../errors.js';
import { silentLogger } from '../telemetry/logger.js';
import { type CacheOptions, DEFAULTS, type ResolvedOptions } from './cache-options.js';
import { type Duration, toMilliseconds } from './duration.js';

const duration = z.union([z.number(), z.string()]);
const positiveInt = z.number().int().positive();
const segmentName = z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-" only');

const schema = z.strictObject({
  prefix: segmentName.optional(),
  environment: segmentName.optional(),
  defaultTtl: duration.optional(),
  negativeTtl: duration.optional(),
  maxKeyLength: positiveInt.optional(),
  maxValueBytes: positiveInt.max(512 * 1024 * 1024).optional(),
  grace: duration.optional(),
  graceBackoff: duration.optional(),
  loaderTimeout: z.strictObject({ soft: duration.optional(), hard: duration.optional() }).optional(),
  refreshAhead: z.number().gt(0).lt(1).optional(),
  ttlJitter: z.number().min(0).lt(1).optional(),
  codec: z.enum(['json', 'msgpack']).optional(),
  compression: z
    .union([
      z.boolean(),
      z.strictObject({
        threshold: z.number().int().min(0).optional(),
        algorithm: z.enum(['gzip', 'brotli']).optional(),
      }),
    ])
    .optional(),
  memory: z
    .union([
      z.literal(false),
      z.strictObject({
        maxEntries: positiveInt.optional(),
        maxBytes: positiveInt.optional(),
        maxTtl: duration.optional(),
      }),
    ])
    .optional(),
  redis: z
    .union([
      z.literal(false),
      z.strictObject({
        enabled: z.boolean().optional(),
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
          .optional(),
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535).optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        db: z.number().int().min(0).optional(),
        tls: z.boolean().optional(),
        client: z
          .custom<object>((v) => typeof v === 'object' && v !== null, 'a node-redis client')
          .optional(),
        driver: z.custom<object>((v) => typeof v === 'object' && v !== null, 'a RedisDriver').optional(),
        commandTimeout: duration.optional(),
        connectTimeout: duration.optional(),
        maxPendingCommands: positiveInt.optional(),
        circuitBreaker: z
          .strictObject({ failureThreshold: positiveInt.optional(), openDuration: duration.optional() })
          .optional(),
        reclaimPageSize: positiveInt.optional(),
        softTimeout: duration.optional(),
        bus: z
          .union([z.literal(false), z.strictObject({ unhealthyMemoryTtl: duration.optional() })])
          .optional(),
        distributedLock: z
          .union([
            z.literal(false),
            z.strictObject({ ttl: duration.optional(), pollInterval: duration.optional() }),
          ])
          .optional(),
        maxPendingWrites: z.number().int().min(0).optional(),
      }),
    ])
    .optional(),
  logger: z
    .custom<object>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        ['debug', 'info', 'warn', 'error'].every(
          (m) => typeof (v as Record<string, unknown>)[m] === 'function',
        ),
      'an object with debug, info, warn and error methods',
    )
    .optional(),
  maxNamespaces: positiveInt.optional(),
  maxTenants: z.number().int().min(0).max(100_000).optional(),
});

/**
 * Validates options and fills in defaults.
 * @throws LarderError `E_INVALID_OPTIONS` naming the option and the value it got, or
 * `E_INVALID_TTL` for a bad duration.
 */
export function resolveOptions(options: CacheOptions = {}): ResolvedOptions {
  const result = schema.safeParse(options);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    const value = issue?.path.reduce<unknown>(
      (at, key) => (at as Record<PropertyKey, unknown> | undefined)?.[key],
      options,
    );
    const got =
      issue?.code === 'unrecognized_keys'
        ? `unknown option(s) ${issue.keys.join(', ')}`
        : `got ${describe(value)}`;
    throw new LarderError(
      ErrorCode.InvalidOptions,
      `Invalid option \`${path || '(root)'}\`: ${issue?.message ?? 'invalid'}; ${got}`,
      {
        option: path,
      },
    );
  }

  const memory = options.memory;
  const redis = options.redis;
  const redisOn = redis !== undefined && redis !== false && redis.enabled !== false;
  const sources = redisOn
    ? [redis.url !== undefined || redis.host !== undefined, redis.client, redis.driver].filter(Boolean)
    : [];
  if (redisOn && sources.length > 1) {
    throw new LarderError(
      ErrorCode.InvalidOptions,
      'Give only one of `redis.url`/`redis.host`, `redis.client` and `redis.driver`',
      {
        option: 'redis',
      },
    );
  }

  return {
    prefix:
      options.environment === undefined
        ? (options.prefix ?? DEFAULTS.prefix)
        : `${options.prefix ?? DEFAULTS.prefix}:${options.environment}`,
    defaultTtlMs: toMilliseconds(options.defaultTtl ?? DEFAULTS.defaultTtl, 'defaultTtl'),
    negativeTtlMs: toMilliseconds(options.negativeTtl ?? DEFAULTS.negativeTtl, 'negativeTtl', true),
    graceMs: toMilliseconds(options.grace ?? DEFAULTS.grace, 'grace', true),
    graceBackoffMs: toMilliseconds(options.graceBackoff ?? DEFAULTS.graceBackoff, 'graceBackoff'),
    loaderSoftTimeoutMs: optionalMs(options.loaderTimeout?.soft, 'loaderTimeout.soft'),
    loaderHardTimeoutMs: optionalMs(options.loaderTimeout?.hard, 'loaderTimeout.hard'),
    refreshAhead: options.refreshAhead,
    ttlJitter: options.ttlJitter ?? DEFAULTS.ttlJitter,
    codec: options.codec ?? DEFAULTS.codec,
    compression:
      options.compression === undefined || options.compression === false
        ? false
        : {
            thresholdBytes:
              (options.compression === true ? undefined : options.compression.threshold) ??
              DEFAULTS.compression.threshold,
            algorithm:
              (options.compression === true ? undefined : options.compression.algorithm) ??
              DEFAULTS.compression.algorithm,
          },
    maxKeyLength: options.maxKeyLength ?? DEFAULTS.maxKeyLength,
    maxValueBytes: options.maxValueBytes ?? DEFAULTS.maxValueBytes,
    memory:
      memory === false
        ? false
        : {
            maxEntries: memory?.maxEntries ?? DEFAULTS.memory.maxEntries,
            maxBytes: memory?.maxBytes ?? DEFAULTS.memory.maxBytes,
            maxTtlMs: redisOn
              ? toMilliseconds(memory?.maxTtl ?? DEFAULTS.memory.maxTtl, 'memory.maxTtl')
              : Number.POSITIVE_INFINITY,
          },
    redis: !redisOn
      ? false
      : {
          source:
            redis.driver !== undefined
              ? { kind: 'driver', driver: redis.driver }
              : redis.client !== undefined
                ? { kind: 'client', client: redis.client }
                : {
                    kind: 'connection',
                    connection: {
                      url: redis.url,
                      host: redis.host,
                      port: redis.port,
                      username: redis.username,
                      password: redis.password,
                      db: redis.db,
                      tls: redis.tls,
                    },
                  },
          commandTimeoutMs: toMilliseconds(
            redis.commandTimeout ?? DEFAULTS.redis.commandTimeout,
            'redis.commandTimeout',
          ),
          connectTimeoutMs: toMilliseconds(
            redis.connectTimeout ?? DEFAULTS.redis.connectTimeout,
            'redis.connectTimeout',
          ),
          maxPendingCommands: redis.maxPendingCommands ?? DEFAULTS.redis.maxPendingCommands,
          failureThreshold: redis.circuitBreaker?.failureThreshold ?? DEFAULTS.redis.failureThreshold,
          openDurationMs: toMilliseconds(
            redis.circuitBreaker?.openDuration ?? DEFAULTS.redis.openDuration,
            'redis.circuitBreaker.openDuration',
          ),
          reclaimPageSize: redis.reclaimPageSize ?? DEFAULTS.redis.reclaimPageSize,
          softTimeoutMs: optionalMs(redis.softTimeout, 'redis.softTimeout'),
          bus:
            redis.bus === false || memory === false
              ? false
              : {
                  unhealthyMemoryTtlMs: toMilliseconds(
                    redis.bus?.unhealthyMemoryTtl ?? DEFAULTS.redis.bus.unhealthyMemoryTtl,
                    'redis.bus.unhealthyMemoryTtl',
                  ),
                },
          lock:
            redis.distributedLock === undefined || redis.distributedLock === false
              ? false
              : {
                  ttlMs: toMilliseconds(
                    redis.distributedLock.ttl ?? DEFAULTS.redis.lock.ttl,
                    'redis.distributedLock.ttl',
                  ),
                  pollIntervalMs: toMilliseconds(
                    redis.distributedLock.pollInterval ?? DEFAULTS.redis.lock.pollInterval,
                    'redis.distributedLock.pollInterval',
                  ),
                },
          maxPendingWrites: redis.maxPendingWrites ?? DEFAULTS.redis.maxPendingWrites,
        },
    logger: options.logger ?? silentLogger,
    maxNamespaces: options.maxNamespaces ?? DEFAULTS.maxNamespaces,
    maxTenants: options.maxTenants ?? DEFAULTS.maxTenants,
  };
}

function optionalMs(value: Duration | undefined, what: string): number | undefined {
  return value === undefined ? undefined : toMilliseconds(value, what);
}
