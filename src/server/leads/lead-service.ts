import type { CountryCode } from 'libphonenumber-js/max';
import type { CacheScope, Duration } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import { type Lead, type Organization, parseLeadChanges, UUID_PATTERN } from './lead.js';
import type { LeadRepository } from './lead-repository.js';
import { DEFAULT_PHONE_REGION, normalisePhone, toE164 } from './phone.js';

/** Cache namespace of leads; each organization is a tenant in it. */
export const LEADS_NAMESPACE = 'leads';
/** Cache namespace of organizations. */
export const ORGS_NAMESPACE = 'orgs';
/** How long a lead is cached: leads change rarely during a conversation. */
export const LEAD_TTL: Duration = '5m';
/** How long an organization is cached. */
export const ORG_TTL: Duration = '10m';
/** How long "no such organization" is cached. */
export const ORG_NEGATIVE_TTL: Duration = '30s';

/** Which step of the fallback found the organization. */
export type OrganizationMatch = 'id' | 'slug' | 'phone' | 'default';

/** Input of {@link LeadService.lookupLead}. */
export type LeadLookupInput = {
  /** The caller's number in any format libphonenumber-js understands. */
  phone: string;
  /** An organization id, slug or phone number; the default organization when absent or unknown. */
  org?: string;
};

/** Result of {@link LeadService.lookupLead}. */
export type LeadLookup = {
  lead: Lead;
  organization: Organization;
  organizationMatch: OrganizationMatch;
  /**
   * `miss` when this call queried Postgres for the lead (it was not cached, or was created);
   * `hit` when it came from the cache, or from a load another concurrent call was already running.
   */
  cache: 'hit' | 'miss';
};

/** Options of {@link LeadService}. */
export type LeadServiceOptions = {
  repository: LeadRepository;
  /** The cache root; the service uses its `leads` and `orgs` namespaces. */
  cache: CacheScope;
  /**
   * Region of numbers written without a country code.
   * @default 'US'
   */
  defaultRegion?: CountryCode;
  /**
   * Told after a lead was created (`created`) or updated (`updated`) in Postgres and its own cache
   * entries were invalidated: the hook for caches of things computed from leads (KPIs). Its errors
   * reach the caller, like a failed invalidation.
   */
  onLeadChanged?: (lead: Lead, change: LeadChange) => Promise<void>;
};

/** What happened to a lead, for {@link LeadServiceOptions.onLeadChanged}. */
export type LeadChange = 'created' | 'updated';

/**
 * Lead lookup (find-or-create) and updates, read-through cached in front of Postgres.
 *
 * Cache layout, per organization (tenant `<orgId>` of namespace `leads`):
 * - `phone:<e164>` → the lead's id. A phone's lead in an organization never changes id, so this
 *   entry never needs invalidating.
 * - `lead:<id>` → the lead, tagged `lead:<id>`: `updateLead` invalidates every entry holding the
 *   lead with one `deleteByTag`.
 *
 * Two entries rather than one `phone:<e164>` → lead because a `getOrSet` entry's tags are fixed
 * before its loader runs, and a lead's id is only known once it is loaded.
 *
 * Organizations (namespace `orgs`): `ref:<id or slug>`, `phone:<e164>` and `default`, each the
 * organization or a briefly cached `null`.
 */
export class LeadService {
  readonly #repository: LeadRepository;
  readonly #leads: CacheScope;
  readonly #orgs: CacheScope;
  readonly #region: CountryCode;
  readonly #onLeadChanged: LeadServiceOptions['onLeadChanged'];

  constructor(options: LeadServiceOptions) {
    this.#repository = options.repository;
    this.#leads = options.cache.namespace(LEADS_NAMESPACE);
    this.#orgs = options.cache.namespace(ORGS_NAMESPACE);
    this.#region = options.defaultRegion ?? DEFAULT_PHONE_REGION;
    this.#onLeadChanged = options.onLeadChanged;
  }

  /**
   * Finds the lead of a phone number in an organization, creating it if needed. The phone is
   * normalised to E.164; the organization is resolved by {@link resolveOrganization}. Concurrent
   * lookups of one lead in this process share one load (one INSERT for a new lead).
   * @throws ServiceError `E_INVALID_PHONE` for a phone that is not a valid number; `E_NOT_FOUND`
   * when nothing matches `org` and there is no default organization.
   */
  async lookupLead(input: LeadLookupInput): Promise<LeadLookup> {
    const phone = normalisePhone(input.phone, this.#region);
    const { organization, organizationMatch } = await this.resolveOrganization(input.org);
    const tenant = this.#leads.forTenant(organization.id);
    let loaded = false;
    let created: Lead | undefined;

    // Twice at most: a lead deleted behind the cache's back leaves a phone entry naming a missing
    // id; the entry is dropped and the lead found (or created) again.
    for (let attempt = 1; ; attempt++) {
      const phoneKey = `phone:${phone}`;
      const id = await tenant.getOrSet(
        phoneKey,
        async () => {
          loaded = true;
          const found = await this.#repository.findOrCreate(organization.id, phone);
          if (found.created) created = found.lead;
          return found.lead.id;
        },
        { ttl: LEAD_TTL },
      );
      // Always read by id, never reuse the row find-or-create returned: the entry must be loaded
      // after its tag's version was read, so that an update racing this load cannot be cached.
      const lead = await tenant.getOrSet(
        `lead:${id}`,
        async () => {
          loaded = true;
          return this.#repository.findLeadById(id);
        },
        { ttl: LEAD_TTL, tags: [leadTag(id)], negativeTtl: 0 },
      );
      if (lead !== null) {
        if (created !== undefined) await this.#onLeadChanged?.(created, 'created');
        return { lead, organization, organizationMatch, cache: loaded ? 'miss' : 'hit' };
      }
      await tenant.delete(phoneKey);
      if (attempt === 2) throw new Error(`Lead ${id} for ${phone} disappeared twice during one lookup`);
    }
  }

  /**
   * Resolves an organization reference, in order: an organization whose id or slug is exactly
   * `ref` → the organization reached on `ref` read as a phone number → the default organization.
   * Each step is cached (10 minutes; "not found" 30 seconds).
   * @throws ServiceError `E_NOT_FOUND` when nothing matches and no organization is the default.
   */
  async resolveOrganization(
    ref: string | undefined,
  ): Promise<{ organization: Organization; organizationMatch: OrganizationMatch }> {
    if (ref !== undefined) {
      const exact = await this.#organization(`ref:${ref}`, () => this.#repository.findOrganizationByRef(ref));
      if (exact !== null) {
        return { organization: exact, organizationMatch: UUID_PATTERN.test(ref) ? 'id' : 'slug' };
      }
      const phone = toE164(ref, this.#region);
      if (phone !== undefined) {
        const byPhone = await this.#organization(`phone:${phone}`, () =>
          this.#repository.findOrganizationByPhone(phone),
        );
        if (byPhone !== null) return { organization: byPhone, organizationMatch: 'phone' };
      }
    }
    const fallback = await this.#organization('default', () => this.#repository.findDefaultOrganization());
    if (fallback === null) {
      throw new ServiceError(
        ServiceErrorCode.NotFound,
        ref === undefined
          ? 'No organization given and no default organization is set'
          : `No organization matches ${JSON.stringify(ref)} (id, slug or phone number) and no default organization is set`,
      );
    }
    return { organization: fallback, organizationMatch: 'default' };
  }

  /**
   * Changes a lead's status, classification or name in Postgres, then invalidates every cache
   * entry holding the lead (tag `lead:<id>` in its organization), here and, over the bus, on
   * other instances. Invalidating after the write means a lookup racing the update cannot cache
   * the old row: its entry was recorded under the tag version the invalidation replaces.
   * @throws ServiceError `E_VALIDATION` for a bad patch, `E_NOT_FOUND` for an unknown id.
   */
  async updateLead(id: string, patch: unknown): Promise<Lead> {
    const changes = parseLeadChanges(patch);
    const lead = await this.#repository.updateLead(id, changes);
    if (lead === null) throw new ServiceError(ServiceErrorCode.NotFound, `No lead with id ${id}`);
    await this.#leads.forTenant(lead.organizationId).deleteByTag(leadTag(lead.id));
    await this.#onLeadChanged?.(lead, 'updated');
    return lead;
  }

  #organization(key: string, load: () => Promise<Organization | null>): Promise<Organization | null> {
    return this.#orgs.getOrSet(key, load, { ttl: ORG_TTL, negativeTtl: ORG_NEGATIVE_TTL });
  }
}

/** The tag on every cache entry that holds lead `id`. */
export function leadTag(id: string): string {
  return `lead:${id}`;
}
