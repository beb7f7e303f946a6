import { decode as unpack, encode as pack, ExtensionCodec } from '@msgpack/msgpack';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import type { StoredValue } from '../drivers/driver.js';
import { describe, ErrorCode, LarderError } from '../errors.js';
import {
  assertSize,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  fromFields,
  toFields,
} from './envelope.js';

/** How envelopes are serialized. */
export type CodecSettings = {
  codec: 'json' | 'msgpack';
  compression: false | { thresholdBytes: number; algorithm: 'gzip' | 'brotli' };
  maxValueBytes: number;
};

/*
 * Stored formats, told apart by their first byte:
 * - `{`  : a JSON envelope as text (the default, and what every release reads);
 * - 0x00 : a binary envelope: [0x00, format 1, flags, payload...] where flags bit 0 is msgpack
 *          (else JSON), bit 1 compressed, bit 2 brotli (else gzip).
 * A release that meets an unknown format byte or flag treats the entry as a miss, never misreads it.
 */
const BINARY_MARKER = 0x00;
const BINARY_FORMAT = 1;
const FLAG_MSGPACK = 1;
const FLAG_COMPRESSED = 2;
const FLAG_BROTLI = 4;
const KNOWN_FLAGS = FLAG_MSGPACK | FLAG_COMPRESSED | FLAG_BROTLI;

// Extension types beyond msgpack's own (Date is built in as a timestamp): Map, Set and BigInt of
// any size, so values that JSON flattens come back as they went in.
const extensionCodec = new ExtensionCodec();
extensionCodec.register({
  type: 1,
  encode: (input: unknown) => (input instanceof Map ? pack([...input], { extensionCodec }) : null),
  decode: (data: Uint8Array) => new Map(unpack(data, { extensionCodec }) as Array<[unknown, unknown]>),
});
extensionCodec.register({
  type: 2,
  encode: (input: unknown) => (input instanceof Set ? pack([...input], { extensionCodec }) : null),
  decode: (data: Uint8Array) => new Set(unpack(data, { extensionCodec }) as unknown[]),
});
extensionCodec.register({
  type: 3,
  encode: (input: unknown) => (typeof input === 'bigint' ? pack(input.toString()) : null),
  decode: (data: Uint8Array) => BigInt(unpack(data) as string),
});

/** Serializes envelopes for Redis and reads back every format above. */
export class EnvelopeCodec {
  /** Whether stored values can be bytes: reads must then ask the driver for Buffers. */
  readonly binary: boolean;
  readonly #settings: CodecSettings;

  constructor(settings: CodecSettings) {
    this.#settings = settings;
    this.binary = settings.codec !== 'json' || settings.compression !== false;
  }

  /**
   * @throws LarderError `E_INVALID_VALUE` for a value the codec cannot represent, `E_VALUE_TOO_LARGE`
   * over `maxValueBytes` (measured before compression).
   */
  encode(envelope: Envelope, key: string): StoredValue {
    const { codec, compression, maxValueBytes } = this.#settings;
    let payload: Buffer;
    let flags = 0;
    if (codec === 'json') {
      const text = encodeEnvelope(envelope, maxValueBytes, key);
      if (compression === false || text.length < compression.thresholdBytes / 3) return text;
      payload = Buffer.from(text);
      if (payload.length < compression.thresholdBytes) return text;
    } else {
      payload = packFields(envelope, key);
      assertSize(payload.length, maxValueBytes, key);
      flags |= FLAG_MSGPACK;
    }
    if (compression !== false && payload.length >= compression.thresholdBytes) {
      flags |= FLAG_COMPRESSED;
      if (compression.algorithm === 'brotli') {
        flags |= FLAG_BROTLI;
        payload = brotliCompressSync(payload, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_SIZE_HINT]: payload.length },
        });
      } else {
        payload = gzipSync(payload);
      }
    }
    return Buffer.concat([Buffer.from([BINARY_MARKER, BINARY_FORMAT, flags]), payload]);
  }

  /** The envelope in `raw`, or `undefined` when it is not one this release can read. */
  decode(raw: StoredValue): Envelope | undefined {
    if (typeof raw === 'string') return decodeEnvelope(raw);
    if (raw[0] !== BINARY_MARKER) return decodeEnvelope(raw.toString());
    const flags = raw[2] ?? 0;
    if (raw[1] !== BINARY_FORMAT || (flags & ~KNOWN_FLAGS) !== 0) return undefined;
    try {
      let payload = raw.subarray(3);
      if (flags & FLAG_COMPRESSED) {
        // Bounded output: a corrupt or hostile value cannot inflate past maxValueBytes.
        const maxOutputLength = this.#settings.maxValueBytes;
        payload =
          flags & FLAG_BROTLI
            ? brotliDecompressSync(payload, { maxOutputLength })
            : gunzipSync(payload, { maxOutputLength });
      }
      return flags & FLAG_MSGPACK
        ? fromFields(unpack(payload, { extensionCodec }))
        : decodeEnvelope(payload.toString());
    } catch {
      return undefined;
    }
  }
}

function packFields(envelope: Envelope, key: string): Buffer {
  const value = envelope.value;
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new LarderError(
      ErrorCode.InvalidValue,
      `Cannot cache ${describe(value)} under key ${describe(key)}`,
      { key },
    );
  }
  try {
    const packed = pack(toFields(envelope), { extensionCodec });
    return Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  } catch (error) {
    throw new LarderError(
      ErrorCode.InvalidValue,
      `The value for key ${describe(key)} cannot be serialized with msgpack: ${(error as Error).message}`,
      { key },
      error,
    );
  }
}
