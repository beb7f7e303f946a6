import { describe, ErrorCode, LarderError } from '../errors.js';

/**
 * What Larder stores in Redis for an entry: the value with the metadata needed to judge it on read.
 * Serialized as JSON with short field names:
 * `{"c":createdAt,"e":expiresAt,"g":graceUntil,"s":[scope versions],"t":{tag:version},"v":value}`
 * (`g` only when there is a grace period).
 * `v` is absent when the cached value is `undefined` (a cached "not found").
 */
export type Envelope = {
  value: unknown;
  /** Epoch milliseconds when the value was produced. */
  createdAt: number;
  /** Epoch milliseconds after which the entry is stale. */
  expiresAt: number;
  /** Epoch milliseconds until which a stale entry may still be served when its loader fails (≥ `expiresAt`). */
  graceUntil: number;
  /** Versions of the entry's scope chain (root first) when it was written. */
  scopeVersions: readonly number[];
  /** Versions of the entry's tags when it was written. */
  tagVersions: Readonly<Record<string, number>> | undefined;
};

/**
 * Serializes an envelope.
 * @throws LarderError `E_INVALID_VALUE` when the value cannot be represented in JSON, and
 * `E_VALUE_TOO_LARGE` when the result exceeds `maxBytes`.
 */
export function encodeEnvelope(envelope: Envelope, maxBytes: number, key: string): string {
  let encoded: string;
  try {
    encoded = JSON.stringify(toFields(envelope));
  } catch (error) {
    throw new LarderError(
      ErrorCode.InvalidValue,
      `The value for key ${describe(key)} cannot be serialized to JSON: ${(error as Error).message}`,
      { key },
      error,
    );
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit: skip the byte count when that bound already fits.
  if (encoded.length * 3 > maxBytes) assertSize(Buffer.byteLength(encoded), maxBytes, key);
  return encoded;
}

/** @throws LarderError `E_VALUE_TOO_LARGE` when `bytes` exceeds `maxBytes`. */
export function assertSize(bytes: number, maxBytes: number, key: string): void {
  if (bytes > maxBytes) {
    throw new LarderError(
      ErrorCode.ValueTooLarge,
      `The value for key ${describe(key)} is ${bytes} bytes serialized, over maxValueBytes (${maxBytes})`,
      { key, bytes, maxBytes },
    );
  }
}

/** The stored field names of an envelope (`v` absent for `undefined`, `g` and `t` when unused). */
export function toFields(envelope: Envelope): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    c: envelope.createdAt,
    e: envelope.expiresAt,
    s: envelope.scopeVersions,
  };
  if (envelope.graceUntil > envelope.expiresAt) fields.g = envelope.graceUntil;
  if (envelope.tagVersions !== undefined) fields.t = envelope.tagVersions;
  if (envelope.value !== undefined) fields.v = envelope.value;
  return fields;
}

/** Parses a JSON envelope; `undefined` when the bytes are not a Larder envelope (corrupt or foreign). */
export function decodeEnvelope(raw: string): Envelope | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  return fromFields(parsed);
}

/** Checks decoded fields (from JSON or msgpack) and builds the envelope; `undefined` if they are not one. */
export function fromFields(parsed: unknown): Envelope | undefined {
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { c, e, g, s, t, v } = parsed as Record<string, unknown>;
  if (typeof c !== 'number' || typeof e !== 'number' || !Array.isArray(s) || !s.every(isVersion))
    return undefined;
  if (g !== undefined && typeof g !== 'number') return undefined;
  if (t !== undefined && (typeof t !== 'object' || t === null || !Object.values(t).every(isVersion)))
    return undefined;
  return {
    value: v,
    createdAt: c,
    expiresAt: e,
    graceUntil: g ?? e,
    scopeVersions: s as number[],
    tagVersions: t as Record<string, number> | undefined,
  };
}

function isVersion(value: unknown): value is number {
  // Negative versions are local markers of bumps not yet replayed to Redis (see cache/versions.ts).
  return typeof value === 'number' && Number.isSafeInteger(value);
}
