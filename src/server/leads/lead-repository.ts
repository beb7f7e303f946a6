import type { Queryable } from '../db/database.js';
import { type Lead, type LeadChanges, type Organization, UUID_PATTERN } from './lead.js';

type LeadRow = {
  id: string;
  organization_id: string;
  phone: string;
  name: string | null;
  status: Lead['status'];
  classification: Lead['classification'];
  created_at: Date;
  updated_at: Date;
};

type OrganizationRow = {
  id: string;
  name: string;
  slug: string;
  is_default: boolean;
  phone_numbers: string[];
};

const LEAD_COLUMNS = 'id, organization_id, phone, name, status, classification, created_at, updated_at';
const ORGANIZATION_SELECT = `
  SELECT o.id, o.name, o.slug, o.is_default,
         coalesce(array_agg(p.phone ORDER BY p.phone) FILTER (WHERE p.phone IS NOT NULL), '{}') AS phone_numbers
  FROM organizations o LEFT JOIN organization_phone_numbers p ON p.organization_id = o.id`;

/** Columns a {@link LeadChanges} field writes. */
const CHANGE_COLUMNS = { name: 'name', status: 'status', classification: 'classification' } as const;

/**
 * Leads and organizations in Postgres: the source of truth, read without any cache. Every method
 * is one or two statements; nothing here knows about caching.
 */
export class LeadRepository {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /** The organization whose id (a UUID) or slug is exactly `ref`, or `null`. */
  async findOrganizationByRef(ref: string): Promise<Organization | null> {
    const column = UUID_PATTERN.test(ref) ? 'o.id' : 'o.slug';
    const value = column === 'o.id' ? ref.toLowerCase() : ref;
    return this.#organization(`${ORGANIZATION_SELECT} WHERE ${column} = $1 GROUP BY o.id`, [value]);
  }

  /** The organization reached on `phone` (E.164), or `null`. */
  async findOrganizationByPhone(phone: string): Promise<Organization | null> {
    return this.#organization(
      `${ORGANIZATION_SELECT}
       WHERE o.id = (SELECT organization_id FROM organization_phone_numbers WHERE phone = $1)
       GROUP BY o.id`,
      [phone],
    );
  }

  /** The default organization, or `null` when none is marked. */
  async findDefaultOrganization(): Promise<Organization | null> {
    return this.#organization(`${ORGANIZATION_SELECT} WHERE o.is_default GROUP BY o.id`, []);
  }

  /** The lead with this id, or `null` (also for a malformed id). */
  async findLeadById(id: string): Promise<Lead | null> {
    if (!UUID_PATTERN.test(id)) return null;
    const { rows } = await this.#db.query<LeadRow>(`SELECT ${LEAD_COLUMNS} FROM leads WHERE id = $1`, [id]);
    return rows[0] === undefined ? null : toLead(rows[0]);
  }

  /** The lead of `phone` (E.164) in an organization, or `null`. */
  async findLead(organizationId: string, phone: string): Promise<Lead | null> {
    const { rows } = await this.#db.query<LeadRow>(
      `SELECT ${LEAD_COLUMNS} FROM leads WHERE organization_id = $1 AND phone = $2`,
      [organizationId, phone],
    );
    return rows[0] === undefined ? null : toLead(rows[0]);
  }

  /**
   * The lead of `phone` in an organization, created (status `new`) if there is none. Safe under
   * concurrency, across processes too: the unique (organization_id, phone) constraint lets one
   * INSERT win; the others read the row it wrote.
   */
  async findOrCreateLead(organizationId: string, phone: string): Promise<Lead> {
    return (await this.findOrCreate(organizationId, phone)).lead;
  }

  /** {@link findOrCreateLead}, saying whether this call inserted the lead. */
  async findOrCreate(organizationId: string, phone: string): Promise<{ lead: Lead; created: boolean }> {
    const existing = await this.findLead(organizationId, phone);
    if (existing !== null) return { lead: existing, created: false };
    const { rows } = await this.#db.query<LeadRow>(
      `INSERT INTO leads (organization_id, phone) VALUES ($1, $2)
       ON CONFLICT (organization_id, phone) DO NOTHING
       RETURNING ${LEAD_COLUMNS}`,
      [organizationId, phone],
    );
    if (rows[0] !== undefined) return { lead: toLead(rows[0]), created: true };
    // Another process inserted it between our SELECT and INSERT: read its row.
    const created = await this.findLead(organizationId, phone);
    if (created === null)
      throw new Error(`Lead ${phone} in ${organizationId} vanished right after a conflict`);
    return { lead: created, created: false };
  }

  /** Applies validated changes and bumps `updated_at`; the updated lead, or `null` for an unknown id. */
  async updateLead(id: string, changes: LeadChanges): Promise<Lead | null> {
    if (!UUID_PATTERN.test(id)) return null;
    const params: unknown[] = [id];
    const sets = (Object.keys(CHANGE_COLUMNS) as Array<keyof typeof CHANGE_COLUMNS>)
      .filter((field) => changes[field] !== undefined)
      .map((field) => {
        params.push(changes[field]);
        return `${CHANGE_COLUMNS[field]} = $${params.length}`;
      });
    sets.push('updated_at = now()');
    const { rows } = await this.#db.query<LeadRow>(
      `UPDATE leads SET ${sets.join(', ')} WHERE id = $1 RETURNING ${LEAD_COLUMNS}`,
      params,
    );
    return rows[0] === undefined ? null : toLead(rows[0]);
  }

  async #organization(sql: string, params: unknown[]): Promise<Organization | null> {
    const { rows } = await this.#db.query<OrganizationRow>(sql, params);
    const row = rows[0];
    if (row === undefined) return null;
    return {
      id: row.id,
      name: row.name,
      slug: row.slug,
      phoneNumbers: [...row.phone_numbers],
      isDefault: row.is_default,
    };
  }
}

function toLead(row: LeadRow): Lead {
  return {
    id: row.id,
    organizationId: row.organization_id,
    phone: row.phone,
    name: row.name,
    status: row.status,
    classification: row.classification,
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

/** node-postgres and PGlite both parse `timestamptz` into a `Date`; JSON wants a string. */
function toIso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
