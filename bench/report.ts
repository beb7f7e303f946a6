/** Markdown and number formatting shared by the scenarios. */

export function fmtUs(us: number): string {
  return us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0);
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || Number.isNaN(ms)) return '—';
  return ms < 1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtRatio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? '—' : `${r.toFixed(r < 10 ? 2 : 1)}×`;
}

/** A markdown table; columns from `rightFrom` on are right-aligned. */
export function table(
  header: readonly string[],
  body: ReadonlyArray<readonly string[]>,
  rightFrom = 1,
): string {
  const align = header.map((_, i) => (i >= rightFrom ? '---:' : '---'));
  return [header, align, ...body].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** One target of issue 5, as measured. */
export type Verdict = {
  scenario: number;
  target: string;
  measured: string;
  met: boolean | undefined;
  note?: string;
};

/** What a scenario hands back to the orchestrator. */
export type Section = {
  scenario: number;
  title: string;
  markdown: string;
  verdicts: Verdict[];
};
