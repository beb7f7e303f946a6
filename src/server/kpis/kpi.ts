import { ServiceError, ServiceErrorCode } from '../errors.js';
import { UUID_PATTERN } from '../leads/lead.js';

/**
 * The KPIs computed per organization from its leads, each with the SQL aggregate that computes
 * it over `leads WHERE organization_id = $1`. Constants only: no input ever reaches this SQL.
 */
export const KPI_DEFINITIONS = [
  ['leads_total', 'count(*)'],
  ['status_new', `count(*) FILTER (WHERE status = 'new')`],
  ['status_contacted', `count(*) FILTER (WHERE status = 'contacted')`],
  ['status_qualified', `count(*) FILTER (WHERE status = 'qualified')`],
  ['status_converted', `count(*) FILTER (WHERE status = 'converted')`],
  ['status_lost', `count(*) FILTER (WHERE status = 'lost')`],
  ['classification_hot', `count(*) FILTER (WHERE classification = 'hot')`],
  ['classification_warm', `count(*) FILTER (WHERE classification = 'warm')`],
  ['classification_cold', `count(*) FILTER (WHERE classification = 'cold')`],
  ['classification_none', 'count(*) FILTER (WHERE classification IS NULL)'],
  ['leads_last_7_days', `count(*) FILTER (WHERE created_at >= now() - interval '7 days')`],
  // Converted leads over all leads, 4 decimals; 0 for an organization without leads.
  [
    'conversion_rate',
    `coalesce(round((count(*) FILTER (WHERE status = 'converted'))::numeric / nullif(count(*), 0), 4), 0)`,
  ],
] as const;

/** Name of one KPI, e.g. `status_new` or `conversion_rate`. */
export type KpiName = (typeof KPI_DEFINITIONS)[number][0];

/** Every KPI of an organization, by name. */
export type Kpis = Record<KpiName, number>;

/** The organization a report is about. */
export type KpiOrganization = { id: string; slug: string; name: string };

/** The KPIs of one organization, as `GET /api/kpis` answers them. Plain JSON. */
export type KpiReport = {
  organization: KpiOrganization;
  kpis: Kpis;
  /** When the values were computed from the leads (ISO 8601). */
  computedAt: string;
};

/** Dashboard roles, from most to least privileged. */
export const DASHBOARD_ROLES = ['owner', 'manager', 'agent'] as const;

/** Union of {@link DASHBOARD_ROLES}. */
export type DashboardRole = (typeof DASHBOARD_ROLES)[number];

/** The lead pipeline: leads per status, and new leads of the last 7 days. */
export type PipelineSection = {
  new: number;
  contacted: number;
  qualified: number;
  converted: number;
  lost: number;
  lastSevenDays: number;
};

/** Leads per classification (`unclassified`: not classified yet). */
export type ClassificationSection = { hot: number; warm: number; cold: number; unclassified: number };

/** Totals and rates. */
export type PerformanceSection = { totalLeads: number; conversionRate: number };

/**
 * A dashboard as one role sees it: every role sees the pipeline; `manager` and `owner` also see
 * classification; only `owner` sees performance (totals and conversion rate).
 */
export type Dashboard = {
  role: DashboardRole;
  organization: KpiOrganization;
  computedAt: string;
  sections: {
    pipeline: PipelineSection;
    classification?: ClassificationSection;
    performance?: PerformanceSection;
  };
};

/** The dashboard of `role`, projected from an organization's KPIs. */
export function dashboardFor(role: DashboardRole, report: KpiReport): Dashboard {
  const k = report.kpis;
  const sections: Dashboard['sections'] = {
    pipeline: {
      new: k.status_new,
      contacted: k.status_contacted,
      qualified: k.status_qualified,
      converted: k.status_converted,
      lost: k.status_lost,
      lastSevenDays: k.leads_last_7_days,
    },
  };
  if (role === 'owner' || role === 'manager') {
    sections.classification = {
      hot: k.classification_hot,
      warm: k.classification_warm,
      cold: k.classification_cold,
      unclassified: k.classification_none,
    };
  }
  if (role === 'owner') {
    sections.performance = { totalLeads: k.leads_total, conversionRate: k.conversion_rate };
  }
  return { role, organization: report.organization, computedAt: report.computedAt, sections };
}

/**
 * Checks a dashboard role from a client.
 * @throws ServiceError `E_VALIDATION` (400) naming the role and the known ones.
 */
export function parseDashboardRole(role: string): DashboardRole {
  if ((DASHBOARD_ROLES as readonly string[]).includes(role)) return role as DashboardRole;
  throw new ServiceError(
    ServiceErrorCode.Validation,
    `Unknown dashboard role ${JSON.stringify(role)}: expected one of ${DASHBOARD_ROLES.join(', ')}`,
  );
}

/** What an organization slug looks like (as in the `organizations` table). */
const SLUG_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * Checks an organization reference from a client: an organization id (a UUID) or slug. Unlike
 * lead lookups there is no fallback to the default organization: a dashboard of the wrong tenant
 * is worse than an error.
 * @throws ServiceError `E_VALIDATION` (400) naming the value.
 */
export function parseOrganizationRef(ref: string): string {
  if (UUID_PATTERN.test(ref)) return ref.toLowerCase();
  if (ref.length <= 64 && SLUG_PATTERN.test(ref)) return ref;
  throw new ServiceError(
    ServiceErrorCode.Validation,
    `Expected org to be an organization id (UUID) or slug (lowercase letters, digits and "-"), got ${JSON.stringify(ref.length > 80 ? `${ref.slice(0, 77)}...` : ref)}`,
  );
}
