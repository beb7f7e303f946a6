import ms from 'ms';
import { describe, ErrorCode, LarderError } from '../errors.js';

/** A duration: milliseconds as a number, or a string such as `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'7d'`. */
export type Duration = number | string;

/**
 * Converts a {@link Duration} to milliseconds.
 * @throws LarderError `E_INVALID_TTL` for negative, non-finite or unparsable values, and for zero
 * unless `allowZero` is set.
 */
export function toMilliseconds(value: Duration, what: string, allowZero = false): number {
  const parsed =
    typeof value === 'number' ? value : typeof value === 'string' ? parseString(value) : Number.NaN;
  if (!Number.isFinite(parsed) || parsed < 0 || (parsed === 0 && !allowZero)) {
    throw new LarderError(
      ErrorCode.InvalidTtl,
      `Expected \`${what}\` to be a ${allowZero ? 'non-negative' : 'positive'} number of milliseconds or a duration string like '5m', got ${describe(value)}`,
      { option: what, value },
    );
  }
  // Round up: a fraction of a millisecond must not become 0 (Redis refuses PX 0).
  return Math.ceil(parsed);
}

function parseString(value: string): number {
  const trimmed = value.trim();
  if (trimmed === '') return Number.NaN;
  // ms() returns undefined for garbage; cast keeps its StringValue type out of our public API.
  const parsed = ms(trimmed as ms.StringValue) as number | undefined;
  return parsed ?? Number.NaN;
}

// Per-call TTL strings (`'5m'`) are parsed once: callers pass the same few literals again and again.
const parsedTtls = new Map<string, number>();
const MAX_PARSED_TTLS = 256;

/**
 * {@link toMilliseconds} for per-call options on hot paths: numbers are checked inline, strings are
 * parsed once and remembered.
 */
export function ttlOption(value: Duration, what: string, allowZero = false): number {
  if (typeof value === 'number' && Number.isFinite(value) && (value > 0 || (allowZero && value === 0))) {
    return Math.ceil(value);
  }
  if (typeof value === 'string') {
    const known = parsedTtls.get(value);
    if (known !== undefined && (known > 0 || allowZero)) return known;
    const parsed = toMilliseconds(value, what, allowZero);
    if (parsedTtls.size < MAX_PARSED_TTLS) parsedTtls.set(value, parsed);
    return parsed;
  }
  return toMilliseconds(value, what, allowZero);
}
