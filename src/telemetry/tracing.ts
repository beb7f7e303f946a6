import { createRequire } from 'node:module';
import type * as OpenTelemetry from '@opentelemetry/api';
import type { FallbackReason } from './events.js';
import { redactText } from './redact.js';

type OpenTelemetryApi = typeof OpenTelemetry;

/** The spans Larder records. One name per kind of work, so span names stay few. */
export type SpanName =
  /** A read from Redis on a memory miss (`get`, `has`, `getMany`, `getOrSet`, `getOrSetMany`). */
  | 'larder.redis.read'
  /** A `getOrSet` loader or `getOrSetMany` batch loader run. */
  | 'larder.loader'
  | 'larder.set'
  | 'larder.delete'
  | 'larder.deleteByTag'
  | 'larder.clear';

/** The public call a span belongs to. */
export type TracedOperation =
  | 'get'
  | 'has'
  | 'getMany'
  | 'getOrSet'
  | 'getOrSetMany'
  | 'set'
  | 'setMany'
  | 'delete'
  | 'deleteByTag'
  | 'clear';

/**
 * Attributes of a Larder span. Keys and tenant ids are never recorded: `larder.namespace` is the
 * namespace path as counted by `stats()` (bounded, `(other)` past `maxNamespaces`).
 */
export type LarderSpanAttributes = {
  'larder.namespace': string;
  'larder.operation': TracedOperation;
  /** The tier the span's work happens in. */
  'larder.tier': 'memory' | 'redis' | 'loader';
  /** For reads: whether a value was found. Usually set inside the traced function, once known. */
  'larder.hit'?: boolean;
  /** Set by {@link Tracing.fallback} when Redis was not usable during the span. */
  'larder.fallback'?: FallbackReason;
};

/**
 * What a traced function may add to its span. When nothing records the span (no SDK, or sampled
 * out) this is OpenTelemetry's non-recording span and every call is a no-op.
 */
export interface TraceSpan {
  setAttribute<K extends keyof LarderSpanAttributes>(
    key: K,
    value: NonNullable<LarderSpanAttributes[K]>,
  ): unknown;
  /** Whether anything records this span: `false` lets callers skip work done only for it. */
  isRecording(): boolean;
}

/** Options of {@link Tracing}. */
export type TracingOptions = {
  /**
   * `false` turns tracing off: spans are never started, as when `@opentelemetry/api` is not
   * installed (an optional peer dependency).
   * @default true
   */
  enabled?: boolean;
};

const TRACER_NAME = 'larder';

// Stands in for a span when tracing is off or `@opentelemetry/api` is not installed.
const NO_SPAN: TraceSpan = { setAttribute: () => undefined, isRecording: () => false };

/**
 * Spans for the slow paths of a cache (Redis round trips, loaders, writes and invalidations),
 * through the global OpenTelemetry tracer provider.
 *
 * Without an SDK registered it costs one `startSpan` on OpenTelemetry's no-op tracer and an
 * `isRecording()` check per call, then calls `fn` directly: no extra promise, no context switch.
 * Without `@opentelemetry/api` installed it is a plain call. Memory-tier hits must not be traced
 * at all: they are the hot path.
 */
export class Tracing {
  readonly #api: OpenTelemetryApi | undefined;
  readonly #tracer: OpenTelemetry.Tracer | undefined;
  // Marks contexts whose active span Larder created, so fallback() never touches a caller's span.
  readonly #ownSpan: symbol | undefined;

  constructor(options: TracingOptions = {}) {
    const api = options.enabled === false ? undefined : loadOpenTelemetry();
    this.#api = api;
    // A tracer taken from the global provider before an SDK registers resolves to the SDK's
    // tracer once one does: the API's proxy looks the delegate up until it finds one.
    this.#tracer = api?.trace.getTracer(TRACER_NAME);
    this.#ownSpan = api?.createContextKey('larder.span');
  }

  /** Whether spans can be started: enabled and `@opentelemetry/api` found. Says nothing of an SDK. */
  get available(): boolean {
    return this.#api !== undefined;
  }

  /**
   * Runs `fn` inside a span named `name`. The span is the active one while `fn` runs (spans the
   * loader starts become its children), ends when `fn` settles, and records a rejection as an
   * exception with error status (messages redacted) before passing it on.
   */
  span<T>(name: SpanName, attributes: LarderSpanAttributes, fn: (span: TraceSpan) => Promise<T>): Promise<T> {
    const tracer = this.#tracer;
    if (tracer === undefined) return fn(NO_SPAN);
    const span = tracer.startSpan(name, { attributes });
    if (!span.isRecording()) return fn(span);
    return this.#record(span, fn);
  }

  /**
   * Notes on the span Larder has active, if any, that Redis was not usable (`larder.fallback`).
   * Meant for the one place the core absorbs Redis failures. A no-op without a recording span.
   */
  fallback(reason: FallbackReason): void {
    const api = this.#api;
    if (api === undefined || this.#ownSpan === undefined) return;
    const span = api.context.active().getValue(this.#ownSpan) as OpenTelemetry.Span | undefined;
    span?.setAttribute('larder.fallback', reason);
  }

  #record<T>(span: OpenTelemetry.Span, fn: (span: TraceSpan) => Promise<T>): Promise<T> {
    const api = this.#api as OpenTelemetryApi;
    const active = api.context.active();
    const context = api.trace.setSpan(active, span).setValue(this.#ownSpan as symbol, span);
    let running: Promise<T>;
    try {
      running = Promise.resolve(api.context.with(context, fn, undefined, span));
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      (value) => {
        span.end();
        return value;
      },
      (error: unknown) => {
        span.recordException(exceptionOf(error));
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: messageOf(error) });
        span.end();
        throw error;
      },
    );
  }
}

/** `@opentelemetry/api`, if installed. Loaded with `require` so the import cannot fail the cache. */
function loadOpenTelemetry(): OpenTelemetryApi | undefined {
  try {
    // The API keeps its registrations on globalThis, so this CommonJS copy and an application's
    // ESM import of it share the same tracer provider and context manager.
    return createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
  } catch (error) {
    // An optional peer dependency: not installed means not traced.
    if ((error as { code?: unknown }).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

function messageOf(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

/** The error as OpenTelemetry records it, with credentials in URLs masked. */
function exceptionOf(error: unknown): OpenTelemetry.Exception {
  if (!(error instanceof Error)) return redactText(String(error));
  const code = (error as { code?: unknown }).code;
  return {
    name: error.name,
    message: redactText(error.message),
    ...(error.stack === undefined ? {} : { stack: redactText(error.stack) }),
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
  };
}
