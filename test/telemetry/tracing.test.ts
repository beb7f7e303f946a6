import * as api from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  type Sampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { type LarderSpanAttributes, Tracing } from '../../src/telemetry/tracing.js';

const { context, SpanKind, SpanStatusCode, trace } = api;

const READ: LarderSpanAttributes = {
  'larder.namespace': 'kpi',
  'larder.operation': 'getOrSet',
  'larder.tier': 'redis',
};
const LOAD: LarderSpanAttributes = { ...READ, 'larder.tier': 'loader' };

/** Registers an SDK globally for one test, with spans kept in memory. */
function registerSdk(sampler?: Sampler): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(sampler === undefined ? {} : { sampler }),
  });
  expect(trace.setGlobalTracerProvider(provider)).toBe(true);
  expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).toBe(true);
  return exporter;
}

afterEach(() => {
  trace.disable();
  context.disable();
});

describe('Tracing without an SDK', () => {
  it('calls fn and hands back its own promise: no span, no wrapping', async () => {
    const unregistered = new InMemorySpanExporter();
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(unregistered)] }); // never registered
    const tracing = new Tracing();
    expect(tracing.available).toBe(true);
    const result = Promise.resolve(42);
    let calls = 0;
    const returned = tracing.span('larder.redis.read', READ, (span) => {
      calls++;
      span.setAttribute('larder.hit', true); // a no-op on a non-recording span
      return result;
    });
    expect(returned).toBe(result);
    expect(await returned).toBe(42);
    expect(calls).toBe(1);
    tracing.fallback('timeout'); // nothing active: a no-op
    expect(unregistered.getFinishedSpans()).toEqual([]);
  });

  it('passes a rejection through untouched', async () => {
    const boom = new Error('db down');
    await expect(new Tracing().span('larder.loader', LOAD, () => Promise.reject(boom))).rejects.toBe(boom);
  });

  it('is a plain call when turned off (as without @opentelemetry/api), even with an SDK registered', async () => {
    const exporter = registerSdk();
    const tracing = new Tracing({ enabled: false });
    expect(tracing.available).toBe(false);
    const result = Promise.resolve('v');
    expect(tracing.span('larder.set', { ...READ, 'larder.operation': 'set' }, () => result)).toBe(result);
    tracing.fallback('error');
    await result;
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('does not record spans the sampler drops', async () => {
    const exporter = registerSdk(new AlwaysOffSampler());
    const result = Promise.resolve(1);
    expect(new Tracing().span('larder.redis.read', READ, () => result)).toBe(result);
    await result;
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

describe('Tracing with an SDK registered', () => {
  it('records one ended span with the Larder attributes, including what fn adds', async () => {
    const exporter = registerSdk();
    const tracing = new Tracing();
    const value = await tracing.span('larder.redis.read', READ, async (span) => {
      span.setAttribute('larder.hit', false);
      return 'miss';
    });
    expect(value).toBe('miss');
    const [span, ...others] = exporter.getFinishedSpans();
    expect(others).toEqual([]);
    expect(span?.name).toBe('larder.redis.read');
    expect(span?.kind).toBe(SpanKind.INTERNAL);
    expect(span?.instrumentationScope.name).toBe('larder');
    expect(span?.attributes).toEqual({
      'larder.namespace': 'kpi',
      'larder.operation': 'getOrSet',
      'larder.tier': 'redis',
      'larder.hit': false,
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.ended).toBe(true);
  });

  it('records a rejection as an exception with error status, credentials masked, and rethrows it', async () => {
    const exporter = registerSdk();
    const boom = new Error('connect ECONNREFUSED redis://admin:s3cret@db.internal:6379');
    const error = await new Tracing()
      .span('larder.loader', LOAD, () => Promise.reject(boom))
      .catch((e: unknown) => e);
    expect(error).toBe(boom);
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: 'connect ECONNREFUSED redis://***@db.internal:6379',
    });
    const exception = span?.events.find((e) => e.name === 'exception');
    expect(exception?.attributes?.['exception.type']).toBe('Error');
    expect(exception?.attributes?.['exception.message']).toBe(
      'connect ECONNREFUSED redis://***@db.internal:6379',
    );
    expect(String(exception?.attributes?.['exception.stacktrace'])).not.toContain('s3cret');
    expect(span?.ended).toBe(true);
  });

  it('turns a synchronous throw into a recorded rejection', async () => {
    const exporter = registerSdk();
    const thrown = new TypeError('not a function');
    const traced = new Tracing().span('larder.loader', LOAD, () => {
      throw thrown;
    });
    await expect(traced).rejects.toBe(thrown);
    expect(exporter.getFinishedSpans()[0]?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('is the active span while fn runs: the loader’s spans are its children, it is the caller’s', async () => {
    const exporter = registerSdk();
    const app = trace.getTracer('app');
    const tracing = new Tracing();
    await app.startActiveSpan('GET /reports', async (request) => {
      await tracing.span('larder.loader', LOAD, async () => {
        await new Promise((r) => setTimeout(r, 1)); // the context survives an await
        app.startSpan('SELECT reports').end();
      });
      request.end();
    });
    const byName = new Map(exporter.getFinishedSpans().map((s) => [s.name, s]));
    const request = byName.get('GET /reports');
    const loader = byName.get('larder.loader');
    const query = byName.get('SELECT reports');
    expect(loader?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    expect(query?.parentSpanContext?.spanId).toBe(loader?.spanContext().spanId);
    expect(loader?.spanContext().traceId).toBe(request?.spanContext().traceId);
  });

  it('fallback() marks the Larder span that is active, never a caller’s span', async () => {
    const exporter = registerSdk();
    const tracing = new Tracing();
    await trace.getTracer('app').startActiveSpan('GET /reports', async (request) => {
      tracing.fallback('circuit-open'); // no Larder span active: ignored
      await tracing.span('larder.set', { ...READ, 'larder.operation': 'set' }, async () => {
        await Promise.resolve();
        tracing.fallback('timeout');
      });
      request.end();
    });
    const byName = new Map(exporter.getFinishedSpans().map((s) => [s.name, s]));
    expect(byName.get('larder.set')?.attributes['larder.fallback']).toBe('timeout');
    expect(byName.get('GET /reports')?.attributes).toEqual({});
  });

  it('records through a Tracing created before the SDK was registered', async () => {
    const tracing = new Tracing(); // as when a cache is created at import time
    const exporter = registerSdk();
    await tracing.span('larder.delete', { ...READ, 'larder.operation': 'delete' }, async () => undefined);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['larder.delete']);
  });
});
