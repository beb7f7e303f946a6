/**
 * Micro benchmark of `Tracing.span()` overhead per call, against calling the traced function
 * directly. Not a test: timings vary by machine. Run with
 *   node --import tsx test/telemetry/tracing-overhead.ts
 *
 * The traced side pays everything a core call site would: the attributes object, the closure,
 * and the span check. Passthrough modes (no API, no SDK, sampled out) are timed in a tight loop,
 * since they hand back fn's own promise; the recording mode is awaited per call, against an
 * awaited baseline.
 */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Tracing } from '../../src/telemetry/tracing.js';

const RESOLVED = Promise.resolve(1);
const work = (): Promise<number> => RESOLVED;
let sink = 0;

function tightBaseline(n: number): void {
  for (let i = 0; i < n; i++) if (work() === RESOLVED) sink++;
}

function tightTraced(tracing: Tracing, n: number, namespace: string): void {
  for (let i = 0; i < n; i++) {
    const p = tracing.span(
      'larder.redis.read',
      { 'larder.namespace': namespace, 'larder.operation': 'getOrSet', 'larder.tier': 'redis' },
      () => work(),
    );
    if (p === RESOLVED) sink++;
  }
}

async function awaitedBaseline(n: number): Promise<void> {
  for (let i = 0; i < n; i++) sink += await work();
}

async function awaitedTraced(tracing: Tracing, n: number, namespace: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    sink += await tracing.span(
      'larder.redis.read',
      { 'larder.namespace': namespace, 'larder.operation': 'getOrSet', 'larder.tier': 'redis' },
      async (span) => {
        span.setAttribute('larder.hit', true);
        return work();
      },
    );
  }
}

/** Median ns per call over `runs` timed runs of `n` calls, after one warm-up run. */
async function nsPerCall(n: number, body: () => void | Promise<void>, runs = 7): Promise<number> {
  await body();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const started = process.hrtime.bigint();
    await body();
    samples.push(Number(process.hrtime.bigint() - started) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] as number;
}

/** Drops spans: measures the SDK's recording cost, not an exporter's. */
class DiscardingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

function registerSdk(sampler?: Sampler): void {
  trace.disable();
  context.disable();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(new DiscardingExporter())],
      ...(sampler === undefined ? {} : { sampler }),
    }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

const TIGHT = 2_000_000;
const AWAITED = 200_000;
const namespace = 'kpi';
const rows: Array<[string, number, number]> = [];

const base = await nsPerCall(TIGHT, () => tightBaseline(TIGHT));
const absent = await nsPerCall(TIGHT, () => tightTraced(new Tracing({ enabled: false }), TIGHT, namespace));
rows.push(['off (as without @opentelemetry/api)', absent, absent - base]);
const noSdk = new Tracing();
const noSdkNs = await nsPerCall(TIGHT, () => tightTraced(noSdk, TIGHT, namespace));
rows.push(['API installed, no SDK registered', noSdkNs, noSdkNs - base]);
registerSdk(new AlwaysOffSampler());
const sampledOut = new Tracing();
const sampledOutNs = await nsPerCall(TIGHT, () => tightTraced(sampledOut, TIGHT, namespace));
rows.push(['SDK registered, sampled out', sampledOutNs, sampledOutNs - base]);

const awaitedBase = await nsPerCall(AWAITED, () => awaitedBaseline(AWAITED));
registerSdk();
const recording = new Tracing();
const recordingNs = await nsPerCall(AWAITED, () => awaitedTraced(recording, AWAITED, namespace));
rows.push(['SDK registered, recording (awaited)', recordingNs, recordingNs - awaitedBase]);

console.log(
  `node ${process.version}; baseline direct call ${base.toFixed(1)} ns, awaited ${awaitedBase.toFixed(1)} ns`,
);
console.log('mode'.padEnd(40), 'ns/call'.padStart(10), 'overhead ns'.padStart(12));
for (const [mode, ns, overhead] of rows) {
  console.log(mode.padEnd(40), ns.toFixed(1).padStart(10), overhead.toFixed(1).padStart(12));
}
if (sink === 0) console.log('(unreachable: keeps the loops from being optimised away)');
