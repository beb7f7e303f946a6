import { describe, expect, it } from 'vitest';
import {
  SLUG_MAX_LENGTH,
  SLUG_PATTERN,
  slugCandidate,
  slugify,
} from '../../src/server/company-assistants/slug.js';

describe('slugify', () => {
  it.each([
    ['Acme', 'acme'],
    ['  Acme   Corp  ', 'acme-corp'],
    ['ACME, Inc.', 'acme-inc'],
    ['Café Müller GmbH', 'cafe-muller-gmbh'],
    ['Ångström Labs', 'angstrom-labs'],
    ['Straße & Söhne', 'strasse-sohne'],
    ['Łódź Øresund Æther', 'lodz-oresund-aether'],
    ['İstanbul Şirketi', 'istanbul-sirketi'],
    ['Ｆｕｌｌｗｉｄｔｈ ①', 'fullwidth-1'],
    ['日本 Tech 株式会社', 'tech'],
    ['a--b__c', 'a-b-c'],
    ['--edge--', 'edge'],
  ])('%s → %s', (name, slug) => {
    expect(slugify(name)).toBe(slug);
    expect(slug).toMatch(SLUG_PATTERN);
  });

  it.each(['日本', '!!!', '   ', '😀'])('gives an empty slug for %s', (name) => {
    expect(slugify(name)).toBe('');
  });

  it(`cuts at ${SLUG_MAX_LENGTH} characters without a trailing dash`, () => {
    const slug = slugify(`${'a'.repeat(63)} bcd`);
    expect(slug).toBe('a'.repeat(63));
    expect(slugify('x'.repeat(200))).toHaveLength(SLUG_MAX_LENGTH);
  });
});

describe('slugCandidate', () => {
  it('adds -n from the second candidate on, within the length limit', () => {
    expect(slugCandidate('acme', 1)).toBe('acme');
    expect(slugCandidate('acme', 2)).toBe('acme-2');
    const long = `${'a'.repeat(62)}-b`;
    const candidate = slugCandidate(long, 100);
    expect(candidate).toBe(`${'a'.repeat(60)}-100`);
    expect(candidate.length).toBeLessThanOrEqual(SLUG_MAX_LENGTH);
    expect(candidate).toMatch(SLUG_PATTERN);
  });
});
