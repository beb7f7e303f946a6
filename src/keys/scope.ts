import { describe, ErrorCode, LarderError } from '../errors.js';
import { escapeSegment } from './escape.js';

/**
 * Key grammar (all segments escaped by {@link escapeSegment}):
 *
 * ```
 * <prefix>:<format>:d<scope>:<key>    an entry           larder:1:d:kpi:@acme:revenue
 * <prefix>:<format>:s<scope>          a scope's version  larder:1:s:kpi:@acme
 * <prefix>:<format>:t<scope>:<tag>    a tag's version    larder:1:t:kpi:@acme:leads
 * <prefix>:<format>:l<scope>:<key>    a key's load lock  larder:1:l:kpi:@acme:revenue
 * ```
 * `<scope>` is `:`-joined namespace names and `@`-marked tenant ids, outermost first. Because `:`
 * and `@` are escaped inside segments, every Redis key parses back to exactly one tuple.
 */
export const KEY_FORMAT_VERSION = 1;

/** Longest namespace name or tenant id, in UTF-16 units. */
export const MAX_SEGMENT_LENGTH = 256;

/** One level of scoping: a namespace or a tenant. */
export type ScopeSegment = { readonly kind: 'namespace' | 'tenant'; readonly name: string };

/** An immutable position in the key space; each scoped cache view holds one. */
export class Scope {
  /** Scopes from the root to this one, inclusive. An entry records the version of each. */
  readonly chain: readonly Scope[];
  /** Prefix of every entry key in this scope, ending with `:`. */
  readonly dataPrefix: string;
  /** SCAN pattern matching every entry of this scope and of its sub-scopes. */
  readonly dataPattern: string;
  /** The counter bumped by `clear()`. */
  readonly versionKey: string;
  /** Prefix of this scope's lock keys (distributed stampede protection), ending with `:`. */
  readonly lockPrefix: string;
  /** Prefix of this scope's tag version keys, ending with `:`. */
  readonly tagPrefix: string;
  /** Namespace path without tenants (`kpi/reports`), the label used for per-namespace stats. */
  readonly namespacePath: string;
  /** This scope's escaped segments joined by `:` (`''` for the root). */
  readonly encodedPath: string;
  /** Human-readable path with tenants, for errors and events (`kpi/@acme`). */
  readonly path: string;
  /** Whether entries of this scope may be kept in the memory tier (inherited by sub-scopes). */
  readonly memory: boolean;

  private constructor(
    readonly base: string,
    readonly parent: Scope | undefined,
    readonly segment: ScopeSegment | undefined,
    memory: boolean,
  ) {
    this.memory = memory;
    const encoded =
      parent === undefined || segment === undefined ? '' : `${parent.encodedPath}:${encode(segment)}`;
    this.encodedPath = encoded;
    this.chain = parent === undefined ? [this] : [...parent.chain, this];
    this.dataPrefix = `${base}:d${encoded}:`;
    this.dataPattern = `${this.dataPrefix}*`;
    this.versionKey = `${base}:s${encoded}`;
    this.tagPrefix = `${base}:t${encoded}:`;
    this.lockPrefix = `${base}:l${encoded}:`;
    const names = this.chain.flatMap((s) => (s.segment?.kind === 'namespace' ? [s.segment.name] : []));
    this.namespacePath = names.length === 0 ? '(root)' : names.join('/');
    this.path = this.chain
      .flatMap((s) =>
        s.segment === undefined ? [] : [s.segment.kind === 'tenant' ? `@${s.segment.name}` : s.segment.name],
      )
      .join('/');
  }

  /** The root scope for a key prefix such as `larder` or `larder:production`. */
  static root(prefix: string): Scope {
    return new Scope(`${prefix}:${KEY_FORMAT_VERSION}`, undefined, undefined, true);
  }

  /**
   * A child scope; `memory: false` keeps its entries (and its sub-scopes') out of the memory tier.
   * @throws LarderError for a name that is not a string of 1 to 256 characters.
   */
  child(kind: ScopeSegment['kind'], name: string, memory = this.memory): Scope {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_SEGMENT_LENGTH) {
      const code = kind === 'tenant' ? ErrorCode.InvalidTenant : ErrorCode.InvalidNamespace;
      throw new LarderError(
        code,
        `Expected a ${kind} ${kind === 'tenant' ? 'id' : 'name'} of 1 to ${MAX_SEGMENT_LENGTH} characters, got ${describe(name)}`,
        {
          [kind]: name,
        },
      );
    }
    return new Scope(this.base, this, { kind, name }, memory && this.memory);
  }
}

function encode(segment: ScopeSegment): string {
  const escaped = escapeSegment(segment.name);
  return segment.kind === 'tenant' ? `@${escaped}` : escaped;
}
