/** A reader of the Prometheus text exposition format, enough for prom-client's output. */

/** One sample: `name{labels} value`. */
export type Sample = { name: string; labels: Record<string, string>; value: number };

/** Parsed samples, with look-ups by name and labels. */
export class Exposition {
  readonly samples: Sample[];
  /** `# TYPE` of each metric family. */
  readonly types = new Map<string, string>();

  constructor(text: string) {
    this.samples = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        this.types.set(name as string, type as string);
      }
      if (line === '' || line.startsWith('#')) continue;
      this.samples.push(parseSample(line));
    }
  }

  /** Every series as `name{a="1",b="2"}`, labels sorted: what counts for cardinality. */
  seriesKeys(prefix = ''): string[] {
    return this.samples
      .filter((s) => s.name.startsWith(prefix))
      .map((s) => seriesKey(s.name, s.labels))
      .sort();
  }

  /** The value of one series; throws when it is absent, so a missing series fails loudly. */
  value(name: string, labels: Record<string, string> = {}): number {
    const key = seriesKey(name, labels);
    const found = this.samples.find((s) => seriesKey(s.name, s.labels) === key);
    if (found === undefined) throw new Error(`no series ${key} in the scrape`);
    return found.value;
  }

  has(name: string, labels: Record<string, string> = {}): boolean {
    const key = seriesKey(name, labels);
    return this.samples.some((s) => seriesKey(s.name, s.labels) === key);
  }

  /** Distinct values of one label across the series of the given metric names' prefix. */
  labelValues(label: string, prefix = ''): string[] {
    const values = new Set<string>();
    for (const s of this.samples) {
      const value = s.labels[label];
      if (s.name.startsWith(prefix) && value !== undefined) values.add(value);
    }
    return [...values].sort();
  }
}

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${parts.join(',')}}`;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseSample(line: string): Sample {
  const match = SAMPLE.exec(line);
  if (match === null) throw new Error(`not a sample line: ${line}`);
  const labels: Record<string, string> = {};
  for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL)) {
    labels[key as string] = (raw as string).replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
  }
  const text = match[3] as string;
  const value = text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
  if (Number.isNaN(value) && text !== 'NaN' && text !== 'Nan') throw new Error(`bad value in: ${line}`);
  return { name: match[1] as string, labels, value };
}
