import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();

afterEach(() => {
  trace.disable();
  context.disable();
});

describe('spans of cache operations', () => {
  it('a miss records a Redis read and a loader span; a memory hit records nothing', async () => {
    const exporter = new InMemorySpanExporter();
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    );
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const cache = await suite.ready();
    const leads = cache.namespace('leads').forTenant('acme');
    await leads.getOrSet('k', async () => 'v');
    const afterMiss = exporter
      .getFinishedSpans()
      .map((s) => [s.name, s.attributes['larder.tier'], s.attributes['larder.hit']]);
    expect(afterMiss).toEqual([
      ['larder.redis.read', 'redis', false],
      ['larder.loader', 'loader', undefined],
    ]);
    expect(exporter.getFinishedSpans()[0]?.attributes['larder.namespace']).toBe('leads'); // never the tenant
    exporter.reset();
    await leads.getOrSet('k', async () => 'v');
    expect(exporter.getFinishedSpans()).toEqual([]);
    await leads.deleteByTag('t');
    await leads.set('k2', 1);
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['larder.deleteByTag', 'larder.set']);
  });
});
