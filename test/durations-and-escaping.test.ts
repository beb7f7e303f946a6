import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/index.js';
import { escapeSegment } from '../src/keys/escape.js';
import { toMilliseconds, ttlOption } from '../src/options/duration.js';

describe('durations', () => {
  it('accepts milliseconds and duration strings', () => {
    expect(toMilliseconds(250, 'ttl')).toBe(250);
    expect(toMilliseconds('30s', 'ttl')).toBe(30_000);
    expect(toMilliseconds('5m', 'ttl')).toBe(300_000);
    expect(toMilliseconds('7d', 'ttl')).toBe(604_800_000);
    expect(ttlOption('1h', 'ttl')).toBe(3_600_000);
    expect(ttlOption('1h', 'ttl')).toBe(3_600_000);
    expect(toMilliseconds(0, 'negativeTtl', true)).toBe(0);
  });

  it.each([-1, 0, Number.NaN, Number.POSITIVE_INFINITY, '', 'soon', '-5m', null])(
    'rejects %s with E_INVALID_TTL',
    (bad) => {
      expect(() => toMilliseconds(bad as never, 'ttl')).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidTtl }),
      );
      expect(() => ttlOption(bad as never, 'ttl')).toThrow(
        expect.objectContaining({ code: ErrorCode.InvalidTtl }),
      );
    },
  );
});

describe('segment escaping', () => {
  it('leaves plain text alone and escapes separators, globs, hash tags and whitespace', () => {
    expect(escapeSegment('user-42_ok.v2')).toBe('user-42_ok.v2');
    expect(escapeSegment('日本🙂é')).toBe('日本🙂é');
    expect(escapeSegment('a:b*c?[d]\\{e}@ %')).toBe('a%3Ab%2Ac%3F%5Bd%5D%5C%7Be%7D%40%20%25');
    expect(escapeSegment('\uD800x')).toBe('%uD800x');
    expect(escapeSegment('\u00A0\u2028')).toBe('%A0%u2028');
  });
});
