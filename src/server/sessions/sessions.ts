import { createHmac, randomBytes } from 'node:crypto';
import { fastifyCookie } from '@fastify/cookie';
import fastifySession from '@fastify/session';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { tokensEqual } from '../auth/require-admin.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import type { LarderSessionStore } from './larder-session-store.js';

declare module 'fastify' {
  interface Session {
    /** Set by a successful `POST /api/session/login`: the session may call admin routes. */
    admin?: boolean;
    /** When the admin logged in (ISO 8601). */
    loggedInAt?: string;
  }
}

/** Name of the session cookie. */
export const SESSION_COOKIE = 'larder_session';

/** What {@link createSessions} needs. */
export type SessionsOptions = {
  store: LarderSessionStore;
  /** The admin token a login must present; `undefined` refuses every login. */
  adminToken: (() => string) | undefined;
  /**
   * The cookie signing secret (at least 32 characters). Without it, one is derived from the admin
   * token, so instances sharing the token accept each other's cookies; with neither, a random one
   * (no login can succeed then anyway).
   */
  secret: (() => string) | undefined;
  /** Send the cookie with `Secure` (HTTPS only). @default false */
  secureCookie?: boolean;
};

/** The session machinery of the app: the routes plugin and the check admin routes use. */
export type Sessions = {
  /**
   * Registers `@fastify/cookie`, `@fastify/session` (on the Larder store) and the
   * `/api/session` routes in the context it is registered in. Register it in an encapsulated
   * context holding only the routes that need sessions: its hooks then run for those alone.
   */
  plugin: FastifyPluginAsync;
  /**
   * Whether the request belongs to a logged-in admin session: an `alternatives` entry of the
   * admin guard. Inside the sessions context it reads the session `@fastify/session` loaded;
   * elsewhere it reads the cookie and the store itself (without extending the session).
   */
  isAdmin(request: FastifyRequest): Promise<boolean>;
};

type LoginBody = { token: string };

const loginSchema = {
  tags: ['session'],
  summary: 'Log in with the admin token; sets the session cookie',
  body: {
    type: 'object',
    required: ['token'],
    properties: { token: { type: 'string', minLength: 1, maxLength: 512 } },
  },
} as const;

/**
 * Dashboard sessions: a signed, httpOnly, `SameSite=Strict` cookie naming a session kept in Larder
 * (namespace `sessions`, 24 h, extended by each request that uses it, revoked on logout).
 *
 * Routes (in the plugin's context):
 * - `POST /api/session/login` `{ token }` → 200 `{ admin: true, loggedInAt, expiresAt }` and the
 *   cookie; 401 `E_UNAUTHORIZED` for a wrong token (compared in constant time)
 * - `POST /api/session/logout` → 200 `{ loggedOut }`: the session is deleted on every instance
 * - `GET /api/session` → 200 `{ admin, loggedInAt?, expiresAt? }`
 */
export function createSessions(options: SessionsOptions): Sessions {
  const { store } = options;
  // Made on first use: main.ts may put the admin token into the config after the app is built.
  let signer: ReturnType<typeof fastifyCookie.signerFactory> | undefined;
  const cookieSigner = () => (signer ??= fastifyCookie.signerFactory(signingSecret(options)));

  const plugin: FastifyPluginAsync = async (app) => {
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      secret: cookieSigner(),
      cookieName: SESSION_COOKIE,
      store,
      // No session is stored (nor cookie sent) until a login puts something in it.
      saveUninitialized: false,
      // Each request with a valid cookie saves the session again: its TTL and the cookie restart.
      rolling: true,
      cookie: {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: options.secureCookie ?? false,
        maxAge: store.ttlMs,
      },
    });

    app.post<{ Body: LoginBody }>('/api/session/login', { schema: loginSchema }, async (request) => {
      const expected = options.adminToken?.();
      if (expected === undefined) {
        throw new ServiceError(
          ServiceErrorCode.Unauthorized,
          'Login is off: the service has no admin token (set LARDER_ADMIN_TOKEN)',
        );
      }
      if (!tokensEqual(request.body.token, expected)) {
        throw new ServiceError(ServiceErrorCode.Unauthorized, 'The admin token is wrong');
      }
      // A new id at login: a session id planted in the browser before cannot become an admin's.
      await request.session.regenerate();
      request.session.set('admin', true);
      request.session.set('loggedInAt', new Date().toISOString());
      return describe(request);
    });

    app.post(
      '/api/session/logout',
      { schema: { tags: ['session'], summary: 'Log out' } },
      async (request, reply) => {
        const hadSession = request.session.get('admin') === true;
        // Deletes the stored session (on every instance): the cookie is worthless from here on.
        await request.session.destroy();
        if (request.cookies[SESSION_COOKIE] !== undefined) {
          reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
        }
        return { loggedOut: hadSession };
      },
    );

    app.get(
      '/api/session',
      { schema: { tags: ['session'], summary: 'The current session' } },
      async (request) => describe(request),
    );
  };

  return {
    plugin,
    async isAdmin(request) {
      // Inside the plugin's context `session` is an own decoration (null, or the loaded session).
      const loaded = (request as { session?: FastifyRequest['session'] | null }).session;
      if (loaded !== undefined) return typeof loaded?.get === 'function' && loaded.get('admin') === true;
      const header = request.headers.cookie;
      if (header === undefined) return false;
      const cookie = fastifyCookie.parse(header)[SESSION_COOKIE];
      if (cookie === undefined) return false;
      const unsigned = cookieSigner().unsign(cookie);
      if (!unsigned.valid || unsigned.value === null) return false;
      const session = await store.load(unsigned.value);
      return session?.admin === true;
    },
  };
}

/** The `GET /api/session` answer for the request's session. */
function describe(request: FastifyRequest): { admin: boolean; loggedInAt?: string; expiresAt?: string } {
  const session = request.session;
  if (session.get('admin') !== true) return { admin: false };
  const expires = session.cookie.expires;
  return {
    admin: true,
    ...(session.loggedInAt === undefined ? {} : { loggedInAt: session.loggedInAt }),
    ...(expires instanceof Date ? { expiresAt: expires.toISOString() } : {}),
  };
}

/** `SESSION_SECRET`, else an HMAC of the admin token, else random. */
function signingSecret(options: SessionsOptions): string {
  const configured = options.secret?.();
  if (configured !== undefined) return configured;
  const token = options.adminToken?.();
  const key = token ?? randomBytes(32);
  return createHmac('sha256', key).update('larder session cookie signing key v1').digest('base64url');
}
