/**
 * Every error Larder raises is a {@link LarderError} with a stable `code`, so callers can branch on
 * `err.code` instead of parsing messages. Context fields name the offending value.
 */

/** Stable error codes. */
export const ErrorCode = {
  /** An option passed to `createCache` is invalid. */
  InvalidOptions: 'E_INVALID_OPTIONS',
  /** A cache key is empty, not a string, or too long. */
  InvalidKey: 'E_INVALID_KEY',
  /** A namespace name is empty or not a string. */
  InvalidNamespace: 'E_INVALID_NAMESPACE',
  /** A tenant id is empty or not a string. */
  InvalidTenant: 'E_INVALID_TENANT',
  /** A tag is empty or not a string. */
  InvalidTag: 'E_INVALID_TAG',
  /** A TTL is negative, zero where not allowed, non-finite or unparsable. */
  InvalidTtl: 'E_INVALID_TTL',
  /** A value cannot be serialized (`undefined`, BigInt, circular structure...). */
  InvalidValue: 'E_INVALID_VALUE',
  /** A serialized value exceeds `maxValueBytes`. */
  ValueTooLarge: 'E_VALUE_TOO_LARGE',
  /** A loader passed to `getOrSet` threw or rejected; the original error is the `cause`. */
  LoaderFailed: 'E_LOADER_FAILED',
  /** A loader passed to `getOrSet` did not finish within `loaderTimeout.hard`. */
  LoaderTimeout: 'E_LOADER_TIMEOUT',
  /** An atomic batch on a Redis Cluster spans several hash slots. */
  CrossSlot: 'E_CROSS_SLOT',
  /** Redis is unavailable (down, slow, circuit open) and the operation has no fallback. */
  RedisUnavailable: 'E_REDIS_UNAVAILABLE',
  /** The cache was used after `close()`. */
  Closed: 'E_CLOSED',
} as const;

/** Union of all {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The one error class Larder throws. `code` says what went wrong, `cause` keeps the original error. */
export class LarderError extends Error {
  override readonly name = 'LarderError';
  readonly code: ErrorCode;
  /** Extra context: the bad value, the option name, the operation. Never holds credentials. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** Type guard for {@link LarderError}, optionally of one code. */
export function isLarderError(error: unknown, code?: ErrorCode): error is LarderError {
  return error instanceof LarderError && (code === undefined || error.code === code);
}

/** Renders a value for an error message without dumping huge strings. */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return `${JSON.stringify(shown)} (string of length ${value.length})`;
  }
  if (typeof value === 'number') return `${value} (number)`;
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}
