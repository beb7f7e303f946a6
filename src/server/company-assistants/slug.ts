/** Longest slug, suffix included. */
export const SLUG_MAX_LENGTH = 64;

/** What a slug looks like: lowercase ASCII letters and digits in groups joined by single `-`. */
export const SLUG_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

// Latin letters that NFKD does not decompose into an ASCII base letter plus marks.
const TRANSLITERATIONS: Readonly<Record<string, string>> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  ł: 'l',
  þ: 'th',
  ı: 'i',
};
const TRANSLITERATED = new RegExp(`[${Object.keys(TRANSLITERATIONS).join('')}]`, 'g');

/**
 * Builds a slug from a company name: diacritics stripped (`Café Müller` → `cafe-muller`), every run
 * of other characters turned into one `-`, at most {@link SLUG_MAX_LENGTH} characters. Returns `''`
 * when the name has no letter or digit that maps to ASCII (e.g. `日本` or `!!!`).
 */
export function slugify(name: string, maxLength = SLUG_MAX_LENGTH): string {
  // Lowercase first: some capitals lowercase to a letter plus a combining mark (İ → i̇).
  const ascii = name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(TRANSLITERATED, (c) => TRANSLITERATIONS[c] ?? '');
  return trimDashes(trimDashes(ascii.replace(/[^a-z0-9]+/g, '-')).slice(0, maxLength));
}

/**
 * The `n`th candidate for a base slug: `acme`, `acme-2`, `acme-3`, ... The base is cut so that the
 * candidate stays within {@link SLUG_MAX_LENGTH}.
 */
export function slugCandidate(base: string, n: number): string {
  if (n <= 1) return base;
  const suffix = `-${n}`;
  return `${trimDashes(base.slice(0, SLUG_MAX_LENGTH - suffix.length))}${suffix}`;
}

function trimDashes(value: string): string {
  return value.replace(/^-+|-+$/g, '');
}
