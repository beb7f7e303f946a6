import { Worker } from '../processes.js';
import { fmtInt, type Section, table, type Verdict } from '../report.js';
import { SUBJECTS } from '../subjects.js';
import type { Context } from './context.js';

/** Scenario 8: heap bytes per memory-tier entry at 100k entries of 200-byte values, one process each. */

const ENTRIES = 100_000;
const KINDS: Array<{ kind: string; name: string }> = [
  { kind: 'map', name: 'reference: Map<string, object> (keys and values only)' },
  { kind: 'map-json', name: 'reference: Map<string, JSON string> (keys and serialized values only)' },
  { kind: 'lru-raw', name: 'lru-cache set (raw)' },
  { kind: 'larder-memory', name: SUBJECTS['larder-memory'] },
  { kind: 'bento-memory', name: SUBJECTS['bento-memory'] },
  { kind: 'cacheable-memory', name: SUBJECTS['cacheable-memory'] },
];

type Measured = { bytesPerEntry: number; heapMb: number; kept: boolean };

export async function runHeap(ctx: Context): Promise<Section> {
  const results: Array<[string, Measured]> = [];
  for (const { kind, name } of KINDS) {
    const worker = new Worker(
      'heap-worker.ts',
      { SUBJECT: kind, ENTRIES: String(ENTRIES), VALUE_BYTES: '200' },
      ['--expose-gc'],
    );
    try {
      const measured = await worker.next<Measured>(120_000);
      ctx.log(`8 ${name}: ${fmtInt(measured.bytesPerEntry)} bytes/entry`);
      results.push([name, measured]);
    } finally {
      await worker.stop();
    }
  }
  const objects = results[0]?.[1].bytesPerEntry ?? 0;
  const strings = results[1]?.[1].bytesPerEntry ?? 0;
  // Each subject against the reference holding what it holds (BentoCache serializes).
  const baseOf = (name: string) => (name === SUBJECTS['bento-memory'] ? strings : objects);
  const markdown = [
    table(
      [
        'subject',
        'heap bytes / entry',
        'bookkeeping: above the Map of what it stores',
        'entries still cached',
      ],
      results.map(([name, m], i) => [
        name,
        fmtInt(m.bytesPerEntry),
        i < 2 ? '—' : fmtInt(m.bytesPerEntry - baseOf(name)),
        m.kept ? 'yes' : 'NO (evicted)',
      ]),
    ),
    `- ${fmtInt(ENTRIES)} entries, each a fresh 200-byte JSON object (parsed, so its strings are its own) under a fresh key, ` +
      'inserted through getOrSet (raw `set` for lru-cache and the Map); heapUsed after forced GCs, minus before, divided by the entries. ' +
      'Each subject runs in its own process.',
    "- BentoCache's memory driver serializes entries by default (`serialize: true`): it keeps a JSON string and parses it on every hit; " +
      'Larder, lru-cache and cacheable keep the object. Compare each subject with the reference that stores what it stores: ' +
      'BentoCache above the JSON-string Map, the others above the object Map.',
  ].join('\n\n');
  const larder = results.find(([n]) => n === SUBJECTS['larder-memory'])?.[1];
  const bento = results.find(([n]) => n === SUBJECTS['bento-memory'])?.[1];
  const verdicts: Verdict[] = [
    {
      scenario: 8,
      target: "heap bytes per entry ≤ BentoCache's",
      measured:
        larder === undefined || bento === undefined
          ? '—'
          : `${fmtInt(larder.bytesPerEntry)} vs ${fmtInt(bento.bytesPerEntry)} bytes (${(larder.bytesPerEntry / bento.bytesPerEntry).toFixed(2)}×)`,
      met:
        larder === undefined || bento === undefined ? undefined : larder.bytesPerEntry <= bento.bytesPerEntry,
    },
  ];
  return {
    scenario: 8,
    title: 'Heap bytes per memory-tier entry (100k entries, 200-byte values)',
    markdown,
    verdicts,
  };
}
