import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { MISS_NOTES } from './notes.js';
import { type Section, table } from './report.js';

/** Builds BENCHMARKS.md from the scenarios' sections. */

type Info = {
  date: Date;
  seconds: number;
  load: string;
  durationMs: number;
  repeats: number;
  /** Set when only part of the benchmark ran. */
  partial: string | undefined;
  timingOverhead: string;
  /** What the scenarios did not collect (see `leftoverStrayErrors`). */
  leftovers: { printed: string[]; unhandled: string[] };
};

const PACKAGES = [
  'bentocache',
  'cacheable',
  'cache-manager',
  '@keyv/redis',
  'keyv',
  'ioredis',
  'redis',
  'lru-cache',
  'autocannon',
];

function pkg(name: string): { version: string; engines: string } {
  const root = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  const json = JSON.parse(readFileSync(root, 'utf8')) as { version: string; engines?: { node?: string } };
  return { version: json.version, engines: json.engines?.node ?? 'not declared' };
}

function machine(): string[] {
  const cpus = os.cpus();
  const redis = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
  return [
    `- CPU: ${cpus[0]?.model ?? 'unknown'}, ${cpus.length} cores (shared with other jobs)`,
    `- OS: ${os.type()} ${os.release()} (${os.arch()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`,
    `- Node.js: ${process.version}`,
    `- redis-server: ${/v=(\S+)/.exec(redis)?.[1] ?? redis.trim()} (private instances on loopback, started by the benchmark)`,
  ];
}

export function markdown(sections: Section[], info: Info): string {
  const sorted = [...sections].sort((a, b) => a.scenario - b.scenario);
  const verdicts = sorted.flatMap((s) => s.verdicts);
  const missed = new Set(verdicts.filter((v) => v.met === false).map((v) => v.scenario));
  const targetRows = verdicts.map((v) => [
    String(v.scenario),
    v.target,
    v.measured,
    v.met === undefined ? 'n/a' : v.met ? 'MET' : '**MISSED**',
  ]);
  const versions = PACKAGES.map((name) => {
    const { version, engines } = pkg(name);
    return [name, version, engines];
  });
  return `# Benchmarks

Command: \`npm run bench\` (\`npm run build\`, then \`node --expose-gc --import tsx bench/run.ts\`). Larder is measured from
its compiled \`dist/\`, as users run it (through tsx, esbuild's \`keepNames\` would wrap each of its closures in a helper call).
Subsets: \`BENCH_ONLY=1,4,5 npm run bench\`; smoke test: \`BENCH_DURATION_MS=200 npm run bench\` (both write to a
temporary file, not to this one).
${info.partial === undefined ? '' : `\n**Partial run (${info.partial}).**\n`}
Date: ${info.date.toISOString()}; total run time ${info.seconds.toFixed(0)} s.

## Machine

${machine().join('\n')}
- Load average (1, 5, 15 min) at start → end: ${info.load}

## Subjects

All against the same private redis-server (scenarios 5 and 6 start their own, to pause or kill it).

| subject | setup |
| --- | --- |
| Larder (memory+Redis) | \`createCache({ prefix, redis: { url }, memory: { maxEntries: 10_000, maxBytes: 256 MiB } })\` (node-redis 6 driver) |
| Larder (Redis only) | the same with \`memory: false\` |
| Larder (Redis only, ioredis driver) | \`memory: false, redis: { driver: createIoredisDriver({ url }) }\` (scenarios 2 and 3: each driver is compared with the raw client it wraps) |
| Larder (memory only) | no \`redis\` |
| BentoCache (memory+Redis) | \`bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, maxSize: 256 MiB })).useL2Layer(redisDriver({ connection: ioredis })).useBus(redisBusDriver(...))\` |
| BentoCache (Redis only) | \`useL2Layer(redisDriver(...))\` only |
| cacheable (memory+Keyv Redis) | \`new Cacheable({ primary: createKeyv({ lruSize: 10_000 }), secondary: new KeyvRedis(url) })\` |
| cacheable (Keyv Redis only) | \`new Cacheable({ primary: new KeyvRedis(url) })\` |
| cache-manager 7 (Keyv Redis) | \`createCache({ stores: [new Keyv({ store: new KeyvRedis(url) })] })\`, \`wrap()\` as getOrSet |
| raw ioredis / raw node-redis | GET + \`JSON.parse\`; on a miss the loader, then SET + \`JSON.stringify\` with PX (no single flight) — the floor for a Redis-tier call |
| lru-cache get, awaited | \`lru.get\` inside an async function — the limit for a Promise-returning memory hit; \`lru-cache get, sync\` for reference |

Every subject is used through a getOrSet-shaped call (\`bench/subjects.ts\`); peers keep their defaults except memory
capacities, raised so that every warm key fits (BentoCache's memory driver defaults to 1,000 items).

| package | version | engines.node |
| --- | --- | --- |
${versions.map((r) => `| ${r.join(' | ')} |`).join('\n')}

Node 20 compatibility (this run: Node ${process.version}):

- Every peer installs and runs on Node 20. None of bentocache, cacheable or cache-manager declares \`engines\`.
- **BentoCache 1.6.1 declares the peer dependency \`ioredis ^5.3.2\`**; this repository uses ioredis 6.0.0, so
  \`npm i bentocache\` fails with ERESOLVE. It is installed with an \`overrides\` entry in package.json that gives it
  (and its bus, @boringnode/bus) the repository's ioredis 6.0.0, and its connections are created with \`protocol: 2\`
  (ioredis 6 defaults to RESP3; 2 is the v5 wire protocol). BentoCache is therefore measured on an ioredis major it
  does not declare; nothing misbehaved in the runs below that would point at that.
- cacheable 2.5.0 and cache-manager 7.2.9 need keyv ^5.6 (5.6.0 here). The newest keyv (6.1.0) requires Node ≥ 22.19
  and hookified 3 requires Node ≥ 22.18; neither is pulled in by these versions.
- @keyv/redis 5.1.6 runs on node-redis 5 (\`@redis/client\` 5.12), Larder and the raw node-redis subject on node-redis 6.

## Method

- Values: JSON objects of exactly 200 bytes (\`JSON.stringify\` length), and 10 KB for scenarios 1-3.
- Scenarios 1-3: N async workers (concurrency 1 and 64), each awaiting one call at a time. Per row:
  a ${info.durationMs / 4} ms warm-up then a ${info.durationMs / 1000} s run (10 KB: half as long), repeated ${info.repeats} times,
  repeats interleaved across subjects, full GC before each run; the row is the run with the median ops/s.
  Latency per call from an HdrHistogram (ns), shown in µs; it includes the harness's own cost
  (an empty call measures p50 ${info.timingOverhead}) and, at concurrency 64, the time queued behind the other workers.
- Scenarios 5 and 6 bound every call with the benchmark's own timeout and count a timeout as an error.
- Profiles behind the notes on missed targets: \`node --import tsx bench/profile.ts <path> [concurrency] [seconds]\`
  (paths \`memory-hit\`, \`redis-hit\`, \`redis-hit-io\`, \`miss-set\`, \`miss-set-io\`, \`miss-set-redis\`, \`many-miss\`,
  \`raw-ioredis-hit\`, \`raw-ioredis-miss\`) writes a
  .cpuprofile (Chrome DevTools or speedscope for a flame graph) and prints the top self time.
- The machine is shared and noisy: compare ratios within one run rather than figures across runs.

## Targets (issue 5)

"Its raw client" in scenarios 2 and 3 is the client library the Larder subject runs on: node-redis for the default
driver, ioredis for the ioredis driver. Comparing Larder on one library with the other raw library would measure the
libraries (raw node-redis vs raw ioredis is shown under each scenario), not Larder.

${targetRows.length === 0 ? 'No target was measured in this run.' : table(['scenario', 'target', 'measured', 'verdict'], targetRows, 99)}
${
  missed.size === 0
    ? ''
    : `\n### What limits the missed targets\n\n${[...missed]
        .sort((a, b) => a - b)
        .map((s) => `- Scenario ${s}: ${MISS_NOTES[s] ?? 'not analysed yet.'}`)
        .join('\n')}\n`
}
${sorted.map((s) => `## ${s.scenario}. ${s.title}\n\n${s.markdown}\n`).join('\n')}
## Connections that outlived their subject

${
  info.leftovers.printed.length === 0
    ? 'None: after each scenario closed its subjects, no client kept talking to its Redis.'
    : "ioredis kept printing 'error' events (connection refused) about the Redis of a scenario that had already closed its subjects: " +
      `ioredis connections that were never closed and keep reconnecting. Events counted after the scenario's end, until the end of the run: ${info.leftovers.printed.join('; ')}. ` +
      "Every ioredis client the benchmark creates itself has an 'error' listener; the ones without are created inside peers " +
      "(BentoCache's bus, @boringnode/bus, opens two per instance, and its disconnect() waits for QUIT replies that never come when Redis never answered)."
}
${
  info.leftovers.unhandled.length === 0
    ? ''
    : `\nUnhandled rejections raised after the scenario that caused them had finished (so attributed to none): ${info.leftovers.unhandled.join(', ')}.\n`
}`;
}
