import type { CacheScope, SetManyEntry } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import { slugCandidate, slugify } from './slug.js';

/** What an assistant id looks like. */
export const ASSISTANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** One company ↔ assistant mapping, as stored and as returned by the forward lookup. */
export type CompanyAssistantMapping = {
  [field: string]: unknown;
  companySlug: string;
  companyName: string;
  assistantId: string;
  /** ISO 8601 time of the first write for this assistant and company. */
  createdAt: string;
};

/** Input of {@link MappingStore.save}. */
export type SaveMappingInput = {
  companyName: string;
  assistantId: string;
  /** Lifetime of both directions, in seconds. @default the store's `defaultTtlSeconds` */
  ttlSeconds?: number;
  /** Extra JSON fields kept with the mapping. */
  data?: Record<string, unknown>;
};

/** Options of {@link MappingStore}. */
export type MappingStoreOptions = {
  /**
   * Lifetime of a mapping written without `ttlSeconds`.
   * @default 2592000 (30 days)
   */
  defaultTtlSeconds?: number;
  /**
   * Highest suffix tried when a slug is taken (`acme-2` ... `acme-<maxSuffix>`).
   * @default 100
   */
  maxSuffix?: number;
  /** Clock, for tests. @default () => new Date() */
  now?: () => Date;
};

/** Fields the store owns; the caller's `data` may not set them. */
const RESERVED_FIELDS = ['companySlug', 'companyName', 'assistantId', 'createdAt'] as const;
// Slugs looked up per round trip while searching for a free one.
const CANDIDATES_PER_READ = 10;
// How long a replaced slug's tombstone lives. After it expires the key is simply absent, which
// reads the same; it only has to replace the old entry inside the MULTI.
const TOMBSTONE_TTL_MS = 60_000;

/**
 * Company ↔ assistant mappings in one cache scope, both directions:
 * `slug:<slug>` → the mapping, `assistant:<id>` → the slug. Every change writes both directions
 * (and the tombstone of a slug an assistant leaves) in one `setMany(..., { atomic: true })`, so
 * Redis holds all of a change or none of it, and both directions share one TTL.
 */
export class MappingStore {
  readonly #scope: CacheScope;
  readonly #defaultTtlSeconds: number;
  readonly #maxSuffix: number;
  readonly #now: () => Date;
  #saving: Promise<unknown> = Promise.resolve();

  constructor(scope: CacheScope, options: MappingStoreOptions = {}) {
    this.#scope = scope;
    this.#defaultTtlSeconds = options.defaultTtlSeconds ?? 30 * 24 * 60 * 60;
    this.#maxSuffix = options.maxSuffix ?? 100;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Maps an assistant to a company and returns the mapping. Saving the same assistant for the same
   * company again keeps its slug (and its `createdAt`), refreshing data and TTL. Saving it for
   * another company moves it: the new slug is written and the old one removed in the same MULTI.
   * @throws ServiceError `E_EMPTY_SLUG` when the name yields no slug, `E_RESERVED_FIELD` when `data`
   * sets a field the store owns, `E_SLUG_TAKEN` when every suffix up to `maxSuffix` is taken.
   */
  save(input: SaveMappingInput): Promise<CompanyAssistantMapping> {
    // Saves are check-then-write (is the slug free? then write it). Run one at a time in this
    // process so two concurrent posts cannot both take the same slug. Across instances the
    // race remains: Larder has no conditional write (SET NX / WATCH) to close it.
    const result = this.#saving.then(() => this.#save(input));
    this.#saving = result.catch(() => undefined);
    return result;
  }

  async #save(input: SaveMappingInput): Promise<CompanyAssistantMapping> {
    const companyName = input.companyName.trim();
    const { assistantId } = input;
    const data = input.data ?? {};
    const reserved = RESERVED_FIELDS.filter((f) => Object.hasOwn(data, f));
    if (reserved.length > 0) {
      throw new ServiceError(
        ServiceErrorCode.ReservedField,
        `The service sets ${reserved.map((f) => `\`${f}\``).join(', ')} itself; remove it from the body`,
      );
    }
    const base = slugify(companyName);
    if (base === '') {
      throw new ServiceError(
        ServiceErrorCode.EmptySlug,
        `Company name ${JSON.stringify(companyName)} has no letter or digit to build a slug from`,
      );
    }

    const previous = await this.findByAssistant(assistantId);
    const sameCompany = previous !== undefined && slugify(previous.companyName) === base;
    const companySlug = sameCompany ? previous.companySlug : await this.#freeSlug(base, assistantId);
    const mapping: CompanyAssistantMapping = {
      ...data,
      companySlug,
      companyName,
      assistantId,
      createdAt: sameCompany ? previous.createdAt : this.#now().toISOString(),
    };
    const ttl = (input.ttlSeconds ?? this.#defaultTtlSeconds) * 1000;
    const entries: SetManyEntry[] = [
      { key: slugKey(companySlug), value: mapping, ttl },
      { key: assistantKey(assistantId), value: companySlug, ttl },
    ];
    if (previous !== undefined && previous.companySlug !== companySlug) {
      // A null tombstone rather than a delete: the library's setMany cannot delete, and a separate
      // UNLINK would leave a moment where the old slug still names this assistant.
      entries.push({ key: slugKey(previous.companySlug), value: null, ttl: TOMBSTONE_TTL_MS });
    }
    await this.#scope.setMany(entries, { atomic: true });
    return mapping;
  }

  /** The mapping stored under `slug`, or `undefined`. */
  async findBySlug(slug: string): Promise<CompanyAssistantMapping | undefined> {
    return asMapping(await this.#scope.get<unknown>(slugKey(slug)));
  }

  /**
   * The mapping of an assistant: the reverse entry gives the slug, the forward entry the mapping.
   * `undefined` when either is missing or they disagree (the forward entry names another assistant).
   */
  async findByAssistant(assistantId: string): Promise<CompanyAssistantMapping | undefined> {
    const slug = await this.#scope.get<unknown>(assistantKey(assistantId));
    if (typeof slug !== 'string') return undefined;
    const mapping = await this.findBySlug(slug);
    return mapping?.assistantId === assistantId ? mapping : undefined;
  }

  /** The first candidate slug that is free or already this assistant's, read in batches. */
  async #freeSlug(base: string, assistantId: string): Promise<string> {
    for (let first = 1; first <= this.#maxSuffix; first += CANDIDATES_PER_READ) {
      const count = Math.min(CANDIDATES_PER_READ, this.#maxSuffix - first + 1);
      const candidates = Array.from({ length: count }, (_, i) => slugCandidate(base, first + i));
      const found = await this.#scope.getMany<unknown>(candidates.map(slugKey));
      for (let i = 0; i < candidates.length; i++) {
        const owner = asMapping(found[i]);
        if (owner === undefined || owner.assistantId === assistantId) return candidates[i] as string;
      }
    }
    throw new ServiceError(
      ServiceErrorCode.SlugTaken,
      `The slugs ${slugCandidate(base, 1)} to ${slugCandidate(base, this.#maxSuffix)} are all taken by other assistants`,
    );
  }
}

function slugKey(slug: string): string {
  return `slug:${slug}`;
}

function assistantKey(assistantId: string): string {
  return `assistant:${assistantId}`;
}

/** A stored mapping, or `undefined` for a miss, a tombstone or anything else. */
function asMapping(value: unknown): CompanyAssistantMapping | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Partial<CompanyAssistantMapping>;
  return typeof m.assistantId === 'string' &&
    typeof m.companySlug === 'string' &&
    typeof m.companyName === 'string'
    ? (m as CompanyAssistantMapping)
    : undefined;
}
