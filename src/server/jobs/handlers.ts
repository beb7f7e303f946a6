import type { KpiService } from '../kpis/kpi-service.js';
import { UUID_PATTERN } from '../leads/lead.js';
import type { LeadRepository } from '../leads/lead-repository.js';
import type { LeadService } from '../leads/lead-service.js';
import { classifyLead } from './classifier.js';
import type { JobHandlers } from './job-runner.js';

/** What the job handlers work with. */
export type JobHandlerDependencies = {
  /** Writes go through the service, so that lead and KPI caches are invalidated. */
  leads: LeadService;
  /** Reads come from Postgres, never a cache: a job acts on the current row. */
  leadRepository: LeadRepository;
  kpis: KpiService;
  /** @default Date.now */
  now?: () => number;
};

/**
 * The service's jobs:
 * - `lead-classification` `{ leadId }`: classifies the lead ({@link classifyLead}) and saves the
 *   classification through `LeadService.updateLead` when it changed. A lead id that does not exist
 *   fails every attempt with "lead not found" (and is dead-lettered): the way to see retries and
 *   the dead-letter queue at work, and to re-drive once the lead exists.
 * - `kpi-recompute` `{ organizationId }`: recomputes the organization's KPIs and writes them through.
 */
export function jobHandlers(deps: JobHandlerDependencies): JobHandlers {
  const now = deps.now ?? Date.now;
  return {
    'lead-classification': async (data) => {
      const leadId = field(data, 'leadId');
      const lead = UUID_PATTERN.test(leadId) ? await deps.leadRepository.findLeadById(leadId) : null;
      if (lead === null) throw new Error(`lead not found: ${leadId}`);
      const classification = classifyLead(lead, now());
      if (lead.classification !== classification) await deps.leads.updateLead(lead.id, { classification });
      return { leadId, classification };
    },
    'kpi-recompute': async (data) => {
      const organizationId = field(data, 'organizationId');
      const report = await deps.kpis.recompute(organizationId);
      return { organizationId, computedAt: report.computedAt };
    },
  };
}

/** A string field of job data (stored in Redis, so checked rather than trusted). */
function field(data: unknown, name: string): string {
  const value =
    typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[name] : undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new Error(`invalid job data: expected a string ${name}, got ${JSON.stringify(data)}`);
  }
  return value;
}
