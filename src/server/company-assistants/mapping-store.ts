import type { CacheScope, Duration, SetManyEntry } from '../../index.js';
import type { Database, Queryable } from '../db/database.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import { MappingRepository } from './mapping-repository.js';
import { slugCandidate, slugify } from './slug.js';

/** What an assistant id looks like. */
export const ASSISTANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Cache namespace holding both directions of the mapping. */
export const MAPPING_NAMESPACE = 'company-assistants';

/** How long "no mapping" is cached for a slug or an assistant id. */
export const MAPPING_NEGATIVE_TTL: Duration = '30s';

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
  /** How long the cache keeps both directions, in seconds. @default the store's `defaultTtlSeconds` */
  ttlSeconds?: number;
  /** Extra JSON fields kept with the mapping. */
  data?: Record<string, unknown>;
  /**
   * Writes more rows in the mapping's transaction, once its slug is allocated (a prototype's
   * company and assistant). If it throws, nothing is stored and the error is rethrown.
   */
  alsoStore?: (tx: Queryable, mapping: CompanyAssistantMapping) => Promise<void>;
};

/** Options of {@link MappingStore}. */
export type MappingStoreOptions = {
  /**
   * How long the cache keeps a mapping written without `ttlSeconds`, and a mapping rebuilt from
   * Postgres.
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
// How long a replaced slug's tombstone lives. It only has to replace the old entry inside the
// MULTI; after it expires a read of the slug goes to Postgres, which no longer has it either.
const TOMBSTONE_TTL_MS = 60_000;

/**
 * Company ↔ assistant mappings: Postgres (`company_assistants`) is the source of truth, the cache
 * holds both directions in one scope: `slug:<slug>` → the mapping, `assistant:<id>` → the slug.
 *
 * - Writes go to Postgres first (slug allocation under a lock shared by every instance), then to
 *   the cache: both directions (and the tombstone of a slug an assistant leaves) in one
 *   `setMany(..., { atomic: true })`, so Redis holds all of a change or none of it, with one TTL.
 * - Lookups read through the cache (`getOrSet`) to Postgres, so an expired or evicted entry is
 *   rebuilt; "not found" is cached for {@link MAPPING_NEGATIVE_TTL}.
 * - Every entry is tagged with its key. A write bumps those tags before writing the new entries,
 *   so a lookup that read Postgres before the write's commit cannot cache what it read over them
 *   (its entry is recorded under the old tag version, which reads as a miss).
 */
export class MappingStore {
  readonly #scope: CacheScope;
  readonly #repository: MappingRepository;
  readonly #defaultTtlSeconds: number;
  readonly #maxSuffix: number;
  readonly #now: () => Date;
  #saving: Promise<unknown> = Promise.resolve();

  constructor(scope: CacheScope, repository: MappingRepository, options: MappingStoreOptions = {}) {
    this.#scope = scope;
    this.#repository = repository;
    this.#defaultTtlSeconds = options.defaultTtlSeconds ?? 30 * 24 * 60 * 60;
    this.#maxSuffix = options.maxSuffix ?? 100;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Maps an assistant to a company and returns the mapping. Saving the same assistant for the same
   * company again keeps its slug (and its `createdAt`), refreshing data and TTL. Saving it for
   * another company moves it: the new slug is written and the old one removed, in Postgres in one
   * transaction and in the cache in one MULTI.
   * @throws ServiceError `E_EMPTY_SLUG` when the name yields no slug, `E_RESERVED_FIELD` when `data`
   * sets a field the store owns, `E_SLUG_TAKEN` when every suffix up to `maxSuffix` is taken.
   */
  save(input: SaveMappingInput): Promise<CompanyAssistantMapping> {
    // Postgres orders the saves of all instances (the slug lock); running this process's saves one
    // at a time also orders their cache writes, so a later save's entries are never overwritten
    // by an earlier one's. Across instances two saves of one mapping can still reach the cache
    // in the wrong order (Larder has no conditional write); the next save or TTL repairs it.
    const result = this.#saving.then(() => this.#save(input));
    this.#saving = result.catch(() => undefined);
    return result;
  }

  /**
   * The slug a company would get now, without reserving it: the base slug of `companyName` or its
   * first free suffix.
   * @throws ServiceError `E_EMPTY_SLUG`, `E_SLUG_TAKEN`.
   */
  async proposeSlug(companyName: string): Promise<string> {
    const base = baseSlug(companyName.trim());
    const slug = await this.#repository.firstFreeSlug(base, { maxSuffix: this.#maxSuffix });
    return slug ?? this.#slugTaken(base);
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
    const base = baseSlug(companyName);

    const { mapping, previous } = await this.#repository.withSlugLock(async (tx) => {
      const previous = await this.#repository.findByAssistant(assistantId, tx);
      const sameCompany = previous !== null && slugify(previous.companyName) === base;
      const companySlug = sameCompany
        ? previous.companySlug
        : ((await this.#repository.firstFreeSlug(base, {
            assistantId,
            maxSuffix: this.#maxSuffix,
            db: tx,
          })) ?? this.#slugTaken(base));
      const mapping = await this.#repository.write(tx, {
        companySlug,
        companyName,
        assistantId,
        data,
        createdAt: sameCompany ? previous.createdAt : this.#now(),
      });
      await input.alsoStore?.(tx, mapping);
      return { mapping, previous };
    });

    const ttl = (input.ttlSeconds ?? this.#defaultTtlSeconds) * 1000;
    const slug = mapping.companySlug;
    const entries: SetManyEntry[] = [
      { key: slugKey(slug), value: mapping, ttl, tags: [slugKey(slug)] },
      { key: assistantKey(assistantId), value: slug, ttl, tags: [assistantKey(assistantId)] },
    ];
    if (previous !== null && previous.companySlug !== slug) {
      // A null tombstone rather than a delete: the library's setMany cannot delete, and a separate
      // UNLINK would leave a moment where the old slug still names this assistant.
      const old = slugKey(previous.companySlug);
      entries.push({ key: old, value: null, ttl: TOMBSTONE_TTL_MS, tags: [old] });
    }
    await this.#scope.deleteByTag(entries.map((e) => e.key));
    await this.#scope.setMany(entries, { atomic: true });
    return mapping;
  }

  /** The mapping stored under `slug`, or `undefined`: the cache, else Postgres. */
  async findBySlug(slug: string): Promise<CompanyAssistantMapping | undefined> {
    const key = slugKey(slug);
    const found = await this.#scope.getOrSet<unknown>(key, () => this.#repository.findBySlug(slug), {
      ttl: this.#defaultTtlSeconds * 1000,
      negativeTtl: MAPPING_NEGATIVE_TTL,
      tags: [key],
    });
    return asMapping(found);
  }

  /**
   * The mapping of an assistant: the reverse entry gives the slug, the forward entry the mapping,
   * each from the cache or else Postgres. If the two disagree (the forward entry names another
   * assistant, which a write racing this read can cause), Postgres answers.
   */
  async findByAssistant(assistantId: string): Promise<CompanyAssistantMapping | undefined> {
    const key = assistantKey(assistantId);
    const slug = await this.#scope.getOrSet<unknown>(
      key,
      () => this.#repository.findSlugByAssistant(assistantId),
      { ttl: this.#defaultTtlSeconds * 1000, negativeTtl: MAPPING_NEGATIVE_TTL, tags: [key] },
    );
    if (typeof slug !== 'string') return undefined;
    const mapping = await this.findBySlug(slug);
    if (mapping?.assistantId === assistantId) return mapping;
    return (await this.#repository.findByAssistant(assistantId)) ?? undefined;
  }

  #slugTaken(base: string): never {
    throw new ServiceError(
      ServiceErrorCode.SlugTaken,
      `The slugs ${slugCandidate(base, 1)} to ${slugCandidate(base, this.#maxSuffix)} are all taken by other assistants`,
    );
  }
}

/**
 * The store the service uses: the `company-assistants` namespace of `cache` in front of the
 * `company_assistants` table of `db`.
 */
export function createMappingStore(
  cache: CacheScope,
  db: Database,
  options?: MappingStoreOptions,
): MappingStore {
  return new MappingStore(cache.namespace(MAPPING_NAMESPACE), new MappingRepository(db), options);
}

/** The slug of a company name before suffixes. @throws ServiceError `E_EMPTY_SLUG` */
function baseSlug(companyName: string): string {
  const base = slugify(companyName);
  if (base === '') {
    throw new ServiceError(
      ServiceErrorCode.EmptySlug,
      `Company name ${JSON.stringify(companyName)} has no letter or digit to build a slug from`,
    );
  }
  return base;
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
