import type { Database, Queryable } from '../db/database.js';
import type { CompanyAssistantMapping } from './mapping-store.js';
import { slugCandidate } from './slug.js';

type MappingRow = {
  company_slug: string;
  assistant_id: string;
  company_name: string;
  data: Record<string, unknown> | string | null;
  created_at: Date | string;
};

type CandidateRow = { slug: string; owner: string | null; has_company: boolean };

/** The fields of a mapping row to write. */
export type MappingWrite = {
  companySlug: string;
  companyName: string;
  assistantId: string;
  data: Record<string, unknown>;
  createdAt: Date | string;
};

const COLUMNS = 'company_slug, assistant_id, company_name, data, created_at';
// Serialises slug allocation across every instance on one database (a transaction-level lock,
// released at commit or rollback). Any constant works as long as nothing else takes it; the
// migrations take 7_337_001.
const SLUG_LOCK_ID = 7_337_401;

/**
 * Company ↔ assistant mappings in Postgres (table `company_assistants`): the source of truth the
 * cache entries are rebuilt from. Nothing here knows about caching.
 */
export class MappingRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** The mapping stored under `slug`, or `null`. */
  async findBySlug(slug: string): Promise<CompanyAssistantMapping | null> {
    const { rows } = await this.#db.query<MappingRow>(
      `SELECT ${COLUMNS} FROM company_assistants WHERE company_slug = $1`,
      [slug],
    );
    return rows[0] === undefined ? null : toMapping(rows[0]);
  }

  /** The slug of an assistant's mapping, or `null`. */
  async findSlugByAssistant(assistantId: string): Promise<string | null> {
    const { rows } = await this.#db.query<{ company_slug: string }>(
      'SELECT company_slug FROM company_assistants WHERE assistant_id = $1',
      [assistantId],
    );
    return rows[0]?.company_slug ?? null;
  }

  /** The mapping of an assistant, or `null`; `db` is a transaction when given. */
  async findByAssistant(
    assistantId: string,
    db: Queryable = this.#db,
  ): Promise<CompanyAssistantMapping | null> {
    const { rows } = await db.query<MappingRow>(
      `SELECT ${COLUMNS} FROM company_assistants WHERE assistant_id = $1`,
      [assistantId],
    );
    return rows[0] === undefined ? null : toMapping(rows[0]);
  }

  /**
   * Runs `fn` in a transaction that holds the slug allocation lock: while it runs, no other
   * instance allocates a slug, so a slug {@link firstFreeSlug} returns stays free until commit.
   */
  async withSlugLock<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SLUG_LOCK_ID]);
      return fn(tx);
    });
  }

  /**
   * The first of `base`, `base-2` ... `base-<maxSuffix>` that no other assistant's mapping and no
   * prototype company holds (a slug `assistantId` already holds counts as free), read in batches;
   * `undefined` when all are taken. Without the slug lock (`db` outside {@link withSlugLock}) the
   * answer is only a forecast.
   */
  async firstFreeSlug(
    base: string,
    options: { assistantId?: string; maxSuffix: number; db?: Queryable },
  ): Promise<string | undefined> {
    const db = options.db ?? this.#db;
    for (let first = 1; first <= options.maxSuffix; first += CANDIDATES_PER_READ) {
      const count = Math.min(CANDIDATES_PER_READ, options.maxSuffix - first + 1);
      const candidates = Array.from({ length: count }, (_, i) => slugCandidate(base, first + i));
      const { rows } = await db.query<CandidateRow>(
        `SELECT s.slug, m.assistant_id AS owner,
                EXISTS (SELECT 1 FROM companies c WHERE c.slug = s.slug) AS has_company
         FROM unnest($1::text[]) WITH ORDINALITY AS s (slug, n)
         LEFT JOIN company_assistants m ON m.company_slug = s.slug
         ORDER BY s.n`,
        [candidates],
      );
      const free = rows.find((r) => (r.owner === null ? !r.has_company : r.owner === options.assistantId));
      if (free !== undefined) return free.slug;
    }
    return undefined;
  }

  /**
   * Writes an assistant's mapping in `tx`: updates its row (a new slug moves it) or inserts one.
   * Returns the mapping as stored.
   */
  async write(tx: Queryable, mapping: MappingWrite): Promise<CompanyAssistantMapping> {
    const params = [
      mapping.assistantId,
      mapping.companySlug,
      mapping.companyName,
      JSON.stringify(mapping.data),
      mapping.createdAt,
    ];
    const updated = await tx.query<MappingRow>(
      `UPDATE company_assistants
       SET company_slug = $2, company_name = $3, data = $4::jsonb, created_at = $5, updated_at = now()
       WHERE assistant_id = $1
       RETURNING ${COLUMNS}`,
      params,
    );
    const row =
      updated.rows[0] ??
      (
        await tx.query<MappingRow>(
          `INSERT INTO company_assistants (assistant_id, company_slug, company_name, data, created_at)
           VALUES ($1, $2, $3, $4::jsonb, $5)
           RETURNING ${COLUMNS}`,
          params,
        )
      ).rows[0];
    if (row === undefined) throw new Error(`Writing the mapping of ${mapping.assistantId} returned no row`);
    return toMapping(row);
  }
}

// Slugs looked up per query while searching for a free one.
const CANDIDATES_PER_READ = 10;

function toMapping(row: MappingRow): CompanyAssistantMapping {
  const data = typeof row.data === 'string' ? (JSON.parse(row.data) as Record<string, unknown>) : row.data;
  return {
    ...data,
    companySlug: row.company_slug,
    companyName: row.company_name,
    assistantId: row.assistant_id,
    createdAt: (row.created_at instanceof Date ? row.created_at : new Date(row.created_at)).toISOString(),
  };
}
