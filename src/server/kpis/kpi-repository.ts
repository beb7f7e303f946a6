import type { Queryable } from '../db/database.js';
import { UUID_PATTERN } from '../leads/lead.js';
import { KPI_DEFINITIONS, type KpiOrganization, type KpiReport, type Kpis } from './kpi.js';

const KPI_NAMES = KPI_DEFINITIONS.map(([name]) => name);
const KPI_EXPRESSIONS = KPI_DEFINITIONS.map(([, sql]) => sql).join(',\n    ');

// One statement: aggregate the organization's leads into one array of values, pair it with the
// names, and upsert every KPI. Its RETURNING rows are the report.
const RECOMPUTE_SQL = `
  WITH computed AS (
    SELECT ARRAY[
    ${KPI_EXPRESSIONS}
    ]::numeric[] AS vals
    FROM leads WHERE organization_id = $1
  )
  INSERT INTO kpis (organization_id, name, value, computed_at)
  SELECT $1, k.name, k.value, now()
  FROM computed, unnest($2::text[], computed.vals) AS k(name, value)
  ON CONFLICT (organization_id, name)
    DO UPDATE SET value = EXCLUDED.value, computed_at = EXCLUDED.computed_at
  RETURNING name, value::text AS value, computed_at`;

type KpiRow = { name: string; value: string; computed_at: Date | string };

/** KPIs in Postgres: recomputed from the `leads` table into the `kpis` table. Knows nothing of caching. */
export class KpiRepository {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /** The organization whose id (a UUID) or slug is exactly `ref`, or `null`. */
  async findOrganization(ref: string): Promise<KpiOrganization | null> {
    const column = UUID_PATTERN.test(ref) ? 'id' : 'slug';
    const { rows } = await this.#db.query<KpiOrganization>(
      `SELECT id, slug, name FROM organizations WHERE ${column} = $1`,
      [ref],
    );
    const row = rows[0];
    return row === undefined ? null : { id: row.id, slug: row.slug, name: row.name };
  }

  /** Recomputes every KPI of an organization from its leads and stores them; the new values. */
  async recompute(organization: KpiOrganization): Promise<KpiReport> {
    const { rows } = await this.#db.query<KpiRow>(RECOMPUTE_SQL, [organization.id, KPI_NAMES]);
    return toReport(organization, rows);
  }

  /** The KPIs last stored for an organization, or `null` when they were never computed. */
  async stored(organization: KpiOrganization): Promise<KpiReport | null> {
    const { rows } = await this.#db.query<KpiRow>(
      'SELECT name, value::text AS value, computed_at FROM kpis WHERE organization_id = $1',
      [organization.id],
    );
    return rows.length === 0 ? null : toReport(organization, rows);
  }
}

function toReport(organization: KpiOrganization, rows: KpiRow[]): KpiReport {
  const kpis = Object.fromEntries(KPI_NAMES.map((name) => [name, 0])) as Kpis;
  let computedAt = 0;
  for (const row of rows) {
    if ((KPI_NAMES as readonly string[]).includes(row.name)) kpis[row.name as keyof Kpis] = Number(row.value);
    computedAt = Math.max(computedAt, new Date(row.computed_at).getTime());
  }
  return { organization, kpis, computedAt: new Date(computedAt).toISOString() };
}
