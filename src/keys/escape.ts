/**
 * Escaping of user-supplied key segments.
 *
 * Every segment (namespace, tenant, key, tag) is percent-encoded so that the mapping from
 * (scope, key) tuples to Redis keys is injective:
 * - `:` separates segments, so it never appears unescaped inside one;
 * - `*`, `?`, `[`, `]`, `\` are glob characters: escaped, a segment can be put in a SCAN pattern as is;
 * - `{`, `}` would create Redis Cluster hash tags from user text;
 * - `@` marks tenant segments; `%` is the escape character itself;
 * - whitespace and control characters keep keys printable in `redis-cli`;
 * - lone UTF-16 surrogates would all be written to Redis as the same U+FFFD bytes, so two different
 *   tenant ids could share a key: they are escaped as `%uXXXX`.
 */

// Control characters are exactly what must be escaped here.
/* eslint-disable no-control-regex */
// Non-global twin of ESCAPE_CHARS: a cheap test for the common case of nothing to escape.
const NEEDS_ESCAPE = /[%:{}*?[\]\\@\s\x00-\x1f\x7f]|[\uD800-\uDFFF]/;
const ESCAPE_CHARS = /[%:{}*?[\]\\@\s\x00-\x1f\x7f]|[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g;
/* eslint-enable no-control-regex */

function escapeMatch(match: string): string {
  // A well-formed surrogate pair is an ordinary astral character: keep it.
  if (match.length === 2) return match;
  const code = match.charCodeAt(0);
  return code < 0x100
    ? `%${code.toString(16).toUpperCase().padStart(2, '0')}`
    : `%u${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Percent-encodes one key segment (see the module comment for the escaped set). */
export function escapeSegment(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPE_CHARS, escapeMatch) : value;
}

/** Inverse of {@link escapeSegment}; used by tooling that lists keys. */
export function unescapeSegment(value: string): string {
  return value.replace(
    /%u([0-9A-F]{4})|%([0-9A-F]{2})/g,
    (_, wide: string | undefined, narrow: string | undefined) =>
      String.fromCharCode(Number.parseInt(wide ?? narrow ?? '', 16)),
  );
}
