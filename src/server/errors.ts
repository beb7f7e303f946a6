/**
 * The service's own error catalogue: each code has one HTTP status, and the error handler
 * (`error-handler.ts`) turns any of them into `{ error: { code, message } }` in one place.
 */
export const ServiceErrorCode = {
  /** The request does not match a route's schema (body, query or params). */
  Validation: 'E_VALIDATION',
  /** The company name has no letter or digit a slug could be made of. */
  EmptySlug: 'E_EMPTY_SLUG',
  /** The body sets a field the service owns (`companySlug`, `createdAt`). */
  ReservedField: 'E_RESERVED_FIELD',
  /** A phone number that is not a valid number (libphonenumber-js), named in the message. */
  InvalidPhone: 'E_INVALID_PHONE',
  /** An admin route was called without a valid admin token or admin session. */
  Unauthorized: 'E_UNAUTHORIZED',
  /** Nothing is stored under the given slug, assistant id or lead id, or the route does not exist. */
  NotFound: 'E_NOT_FOUND',
  /** Every slug variant (`acme`, `acme-2` ... `acme-100`) is taken by other assistants. */
  SlugTaken: 'E_SLUG_TAKEN',
  /** Too many requests from one client IP or for one tenant; `Retry-After` says when to retry. */
  RateLimited: 'E_RATE_LIMITED',
  /** The cache is closing or closed: the service is shutting down. */
  Unavailable: 'E_UNAVAILABLE',
  /** An upstream API (the assistant provider) failed or answered with an error. */
  Upstream: 'E_UPSTREAM',
  /** An upstream API (the assistant provider) did not answer in time. */
  UpstreamTimeout: 'E_UPSTREAM_TIMEOUT',
  /** Anything unexpected; details are logged, never sent. */
  Internal: 'E_INTERNAL',
} as const;

/** Union of all {@link ServiceErrorCode} values. */
export type ServiceErrorCode = (typeof ServiceErrorCode)[keyof typeof ServiceErrorCode];

const STATUS: Record<ServiceErrorCode, number> = {
  E_VALIDATION: 400,
  E_EMPTY_SLUG: 400,
  E_RESERVED_FIELD: 400,
  E_INVALID_PHONE: 400,
  E_UNAUTHORIZED: 401,
  E_NOT_FOUND: 404,
  E_SLUG_TAKEN: 409,
  E_RATE_LIMITED: 429,
  E_UNAVAILABLE: 503,
  E_UPSTREAM: 502,
  E_UPSTREAM_TIMEOUT: 504,
  E_INTERNAL: 500,
};

/** An error the service raises on purpose; its message is safe to send to the client. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  readonly code: ServiceErrorCode;
  readonly statusCode: number;

  constructor(code: ServiceErrorCode, message: string) {
    super(message);
    this.code = code;
    this.statusCode = STATUS[code];
  }
}

/** An `E_VALIDATION` error (400) for a request body or query that does not fit. */
export function validationError(message: string): ServiceError {
  return new ServiceError(ServiceErrorCode.Validation, message);
}

/** A client-supplied value as JSON for an error message, cut at 80 characters. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}
