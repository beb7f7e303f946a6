import type { CacheScope, Duration } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import {
  type Dashboard,
  dashboardFor,
  type KpiOrganization,
  type KpiReport,
  parseDashboardRole,
  parseOrganizationRef,
} from './kpi.js';
import type { KpiRepository } from './kpi-repository.js';

/** Cache namespace of KPIs and dashboards; each organization is a tenant in it. */
export const KPIS_NAMESPACE = 'kpis';
/** How long KPIs and dashboards are cached (lead changes invalidate them sooner). */
export const KPI_TTL: Duration = '5m';
/** Refresh-ahead fraction of {@link KPI_TTL}: past 80% of it, a read reloads in the background. */
export const KPI_REFRESH_AHEAD = 0.8;
/** How long an organization reference (id or slug) is cached; "no such organization" 30 s. */
const ORGANIZATION_TTL: Duration = '10m';
const ORGANIZATION_NEGATIVE_TTL: Duration = '30s';

/** The tag on every KPI and dashboard entry of an organization (and on its HTTP responses). */
export function kpiTag(organizationId: string): string {
  return `kpis:${organizationId}`;
}

/** Options of {@link KpiService}. */
export type KpiServiceOptions = {
  repository: KpiRepository;
  /** The cache root; the service uses its `kpis` namespace. */
  cache: CacheScope;
  /** @default {@link KPI_TTL} */
  ttl?: Duration;
  /** @default {@link KPI_REFRESH_AHEAD} */
  refreshAhead?: number;
  /**
   * Called after an organization's KPI entries were invalidated, for caches holding things made
   * from them (the HTTP response cache). Its errors reach the caller of {@link KpiService.invalidate}.
   */
  onInvalidate?: (organizationId: string) => Promise<void>;
};

/**
 * KPIs and role-scoped dashboards per organization, computed from its leads and cached.
 *
 * Cache layout, per organization (tenant `<orgId>` of namespace `kpis`):
 * - `report` → the {@link KpiReport}; `dashboard:<role>` → that role's {@link Dashboard}. Both are
 *   tagged `kpis:<orgId>`, cached for 5 minutes with refresh-ahead at 80%: a read past 4 minutes
 *   answers at once and reloads in the background, so a busy dashboard never waits for SQL.
 * - `org:<ref>` (namespace root) → the organization an id or slug names, or `null`.
 *
 * A cache miss recomputes the KPIs from the leads (one aggregate statement) and stores them in the
 * `kpis` table. {@link invalidate} bumps the tag when leads change; {@link recompute} (the
 * `kpi-recompute` job) recomputes and writes the new report through to the cache.
 */
export class KpiService {
  readonly #repository: KpiRepository;
  readonly #cache: CacheScope;
  readonly #ttl: Duration;
  readonly #refreshAhead: number;
  readonly #onInvalidate: ((organizationId: string) => Promise<void>) | undefined;

  constructor(options: KpiServiceOptions) {
    this.#repository = options.repository;
    this.#cache = options.cache.namespace(KPIS_NAMESPACE);
    this.#ttl = options.ttl ?? KPI_TTL;
    this.#refreshAhead = options.refreshAhead ?? KPI_REFRESH_AHEAD;
    this.#onInvalidate = options.onInvalidate;
  }

  /**
   * The organization an id or slug names (cached 10 minutes).
   * @throws ServiceError `E_VALIDATION` for a malformed reference, `E_NOT_FOUND` for an unknown one.
   */
  async organization(ref: string): Promise<KpiOrganization> {
    const normalized = parseOrganizationRef(ref);
    const organization = await this.#cache.getOrSet(
      `org:${normalized}`,
      () => this.#repository.findOrganization(normalized),
      { ttl: ORGANIZATION_TTL, negativeTtl: ORGANIZATION_NEGATIVE_TTL },
    );
    if (organization === null) {
      throw new ServiceError(
        ServiceErrorCode.NotFound,
        `No organization has the id or slug ${JSON.stringify(ref)}`,
      );
    }
    return organization;
  }

  /**
   * The KPIs of an organization (id or slug), from the cache or recomputed.
   * @throws ServiceError as {@link organization}.
   */
  async report(ref: string): Promise<KpiReport> {
    return this.#report(await this.organization(ref));
  }

  /**
   * The dashboard of `role` for an organization, from the cache or made from its KPIs.
   * @throws ServiceError `E_VALIDATION` for an unknown role or a malformed reference;
   * `E_NOT_FOUND` for an unknown organization.
   */
  async dashboard(role: string, ref: string): Promise<Dashboard> {
    const dashboardRole = parseDashboardRole(role);
    const organization = await this.organization(ref);
    return this.#tenant(organization.id).getOrSet(
      `dashboard:${dashboardRole}`,
      async () => dashboardFor(dashboardRole, await this.#report(organization)),
      this.#entryOptions(organization.id),
    );
  }

  /**
   * Recomputes an organization's KPIs now (the `kpi-recompute` job): invalidates its KPI entries
   * (dashboards included), then writes the new report to the cache, so the next read is a hit.
   * @throws ServiceError as {@link organization}.
   */
  async recompute(ref: string): Promise<KpiReport> {
    const organization = await this.organization(ref);
    const report = await this.#repository.recompute(organization);
    await this.invalidate(organization.id);
    await this.#tenant(organization.id).set('report', report, {
      ttl: this.#ttl,
      tags: [kpiTag(organization.id)],
    });
    return report;
  }

  /**
   * Invalidates every KPI and dashboard entry of an organization (one tag bump, here and on other
   * instances), then calls `onInvalidate`. Call it when the organization's leads change.
   */
  async invalidate(organizationId: string): Promise<void> {
    await this.#tenant(organizationId).deleteByTag(kpiTag(organizationId));
    await this.#onInvalidate?.(organizationId);
  }

  #report(organization: KpiOrganization): Promise<KpiReport> {
    return this.#tenant(organization.id).getOrSet(
      'report',
      () => this.#repository.recompute(organization),
      this.#entryOptions(organization.id),
    );
  }

  #tenant(organizationId: string): CacheScope {
    return this.#cache.forTenant(organizationId);
  }

  #entryOptions(organizationId: string) {
    return { ttl: this.#ttl, refreshAhead: this.#refreshAhead, tags: [kpiTag(organizationId)] };
  }
}
