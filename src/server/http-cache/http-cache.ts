import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CacheScope, Duration, Logger } from '../../index.js';

/** Cache namespace of whole HTTP responses. */
export const HTTP_CACHE_NAMESPACE = 'http';

/** URLs longer than this are keyed by their SHA-256, so any URL makes a valid cache key. */
const MAX_PLAIN_URL_LENGTH = 512;

/** A cached response: only 200s with a string (or buffer) body are stored. */
type CachedResponse = {
  contentType: string | undefined;
  body: string;
  /** `body` is base64 (the handler sent a Buffer). */
  binary?: true;
};

/** Where a request's response is cached, and under which tags. */
export type HttpCacheVary = {
  /** Tenant scope of the entry (e.g. an organization id); the namespace root when absent. */
  tenant?: string;
  /** Tags for {@link HttpCache.invalidate}, scoped to the tenant. */
  tags?: readonly string[];
};

/** Options of {@link HttpCache.route}. */
export type HttpCacheRouteOptions = {
  /** How long a response is served from the cache. */
  ttl: Duration;
  /**
   * Resolves the tenant and tags of a request, before the cache is read. It may throw (e.g. a
   * `ServiceError` for an unknown organization): the request is then answered by the error handler
   * and nothing is cached.
   */
  vary?: (request: FastifyRequest) => HttpCacheVary | Promise<HttpCacheVary>;
};

/** Route-level hooks that {@link HttpCache.route} returns; spread them into a route's options. */
export type HttpCacheHooks = {
  preHandler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  onSend: (request: FastifyRequest, reply: FastifyReply, payload: unknown) => Promise<unknown>;
  onResponse: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  onRequestAbort: (request: FastifyRequest) => Promise<void>;
};

/** Options of {@link HttpCache}. */
export type HttpCacheOptions = {
  /** The cache root; responses go to its `http` namespace. */
  cache: CacheScope;
  /** Receives a warning when the cache cannot be read (the request is then served uncached). */
  logger?: Logger;
};

/** What one request is doing with the cache. */
type RequestState = {
  /** `lookup` until the cache answered; then `hit` (served from the cache) or `miss`. */
  phase: 'lookup' | 'hit' | 'miss';
  /** Completes the cache load with this request's response (`null`: not cacheable). */
  release?: (entry: CachedResponse | null) => void;
};

/**
 * A response cache for GET routes: the whole 200 response (body and content type) is kept in
 * Larder under the method and URL (in the tenant `vary` names), tagged, for `ttl`, and served with
 * `X-Cache: HIT`; responses that went to the handler say `X-Cache: MISS`. Errors, non-200 responses,
 * streams and responses that set a cookie are never cached.
 *
 * The response is cached through `getOrSet`, with the route handler as the loader: the tag
 * versions are read before the handler runs, so an invalidation that happens while the handler
 * builds its response makes that response a miss for the next request instead of caching stale
 * data; and concurrent requests for one URL in a process wait for one handler run.
 * @example
 * const httpCache = new HttpCache({ cache: app.cache });
 * app.get('/api/kpis', { ...httpCache.route({ ttl: '1m', vary: (req) => ({ tenant: orgOf(req) }) }) }, handler);
 * await httpCache.invalidate(orgId, ['kpis']);
 */
export class HttpCache {
  readonly #scope: CacheScope;
  readonly #logger: Logger | undefined;
  readonly #states = new WeakMap<FastifyRequest, RequestState>();

  constructor(options: HttpCacheOptions) {
    this.#scope = options.cache.namespace(HTTP_CACHE_NAMESPACE);
    this.#logger = options.logger;
  }

  /** Invalidates the cached responses of a tenant (or of the root, `undefined`) that carry any of `tags`. */
  async invalidate(tenant: string | undefined, tags: readonly string[]): Promise<void> {
    await this.#scopeOf(tenant).deleteByTag(tags);
  }

  /** The hooks that cache a route's responses. */
  route(options: HttpCacheRouteOptions): HttpCacheHooks {
    return {
      preHandler: (request, reply) => this.#lookup(request, reply, options),
      onSend: async (request, reply, payload) => {
        const state = this.#states.get(request);
        if (state === undefined || state.phase === 'hit') return payload;
        reply.header('x-cache', 'MISS');
        state.release?.(cacheable(reply, payload));
        state.release = undefined;
        return payload;
      },
      // The response was not sent through onSend (or the client went away): never leave a load
      // (and the requests waiting on it) pending.
      onResponse: async (request) => this.#abandon(request),
      onRequestAbort: async (request) => this.#abandon(request),
    };
  }

  async #lookup(
    request: FastifyRequest,
    reply: FastifyReply,
    options: HttpCacheRouteOptions,
  ): Promise<unknown> {
    if (request.method !== 'GET') return undefined;
    const vary = (await options.vary?.(request)) ?? {};
    const state: RequestState = { phase: 'lookup' };
    this.#states.set(request, state);
    let loaderCalled: () => void = () => {};
    const missed = new Promise<undefined>((resolve) => (loaderCalled = () => resolve(undefined)));
    let found: CachedResponse | null | undefined;
    try {
      const result = this.#scopeOf(vary.tenant).getOrSet<CachedResponse | null>(
        keyOf(request),
        () => {
          // Refresh-ahead is off for responses (there is no handler to run after the request was
          // answered); should the loader still be called then, failing keeps the cached response.
          if (state.phase !== 'lookup') throw new Error('HTTP responses are not refreshed ahead');
          state.phase = 'miss';
          loaderCalled();
          return new Promise<CachedResponse | null>((resolve) => (state.release = resolve));
        },
        { ttl: options.ttl, tags: vary.tags, negativeTtl: 0, refreshAhead: false },
      );
      result.catch(() => {}); // settled by this request's own response; failures are logged below
      found = await Promise.race([result, missed]);
    } catch (error) {
      // A cache that cannot answer must not fail the request: serve it uncached.
      this.#logger?.warn({ err: error, url: request.url }, 'http cache: lookup failed; serving uncached');
      state.release?.(null);
      state.phase = 'miss';
      state.release = undefined;
      return undefined;
    }
    if (state.phase === 'miss') return undefined;
    if (found === null || found === undefined) {
      // Another request's load for this URL ended with a response that is not cacheable.
      state.phase = 'miss';
      return undefined;
    }
    state.phase = 'hit';
    reply.header('x-cache', 'HIT');
    if (found.contentType !== undefined) reply.header('content-type', found.contentType);
    return reply.code(200).send(found.binary === true ? Buffer.from(found.body, 'base64') : found.body);
  }

  async #abandon(request: FastifyRequest): Promise<void> {
    const state = this.#states.get(request);
    state?.release?.(null);
    if (state !== undefined) state.release = undefined;
  }

  #scopeOf(tenant: string | undefined): CacheScope {
    return tenant === undefined ? this.#scope : this.#scope.forTenant(tenant);
  }
}

/** The cache key of a request: method and URL (path and query string, as sent). */
function keyOf(request: FastifyRequest): string {
  const url = request.url;
  return url.length <= MAX_PLAIN_URL_LENGTH
    ? `${request.method} ${url}`
    : `${request.method} sha256:${createHash('sha256').update(url).digest('hex')}`;
}

/** What to cache of a response, or `null` when it must not be cached. */
function cacheable(reply: FastifyReply, payload: unknown): CachedResponse | null {
  if (reply.statusCode !== 200 || reply.hasHeader('set-cookie')) return null;
  const type = reply.getHeader('content-type');
  const contentType = typeof type === 'string' ? type : undefined;
  if (typeof payload === 'string') return { contentType, body: payload };
  if (Buffer.isBuffer(payload)) return { contentType, body: payload.toString('base64'), binary: true };
  return null; // a stream, or nothing
}
