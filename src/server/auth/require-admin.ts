import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { ServiceError, ServiceErrorCode } from '../errors.js';

/**
 * Whether `presented` equals `expected`, in time that does not depend on where they differ (the
 * lengths may leak; the token's length is not a secret).
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, if the request has one. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Options of {@link adminGuard}. */
export type AdminGuardOptions = {
  /** The admin token; `undefined` refuses every admin call (no token was configured). */
  token: (() => string) | undefined;
  /**
   * Other ways a request may prove it is an admin (a logged-in admin session), asked when it
   * presents no valid bearer token.
   */
  alternatives?: ReadonlyArray<(request: FastifyRequest) => boolean | Promise<boolean>>;
};

/**
 * A preHandler that lets a request through only when it carries `Authorization: Bearer <token>`
 * with the admin token, or satisfies one of `alternatives`.
 * @throws ServiceError `E_UNAUTHORIZED` (401) otherwise.
 * @example
 * app.post('/api/admin/redis', { preHandler: app.requireAdmin }, handler);
 */
export function adminGuard(options: AdminGuardOptions): preHandlerAsyncHookHandler {
  return async function requireAdmin(request) {
    const expected = options.token?.();
    const presented = bearerToken(request);
    if (expected !== undefined && presented !== undefined && tokensEqual(presented, expected)) return;
    for (const accepts of options.alternatives ?? []) if (await accepts(request)) return;
    throw new ServiceError(
      ServiceErrorCode.Unauthorized,
      expected === undefined
        ? 'Admin routes are off: the service has no admin token (set LARDER_ADMIN_TOKEN)'
        : presented === undefined
          ? 'This route needs the admin token: send "Authorization: Bearer <LARDER_ADMIN_TOKEN>" or log in'
          : 'The admin token is wrong',
    );
  };
}
