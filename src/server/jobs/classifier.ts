import type { Lead, LeadClassification } from '../leads/lead.js';

const DAY_MS = 86_400_000;

/** Points per status: how far down the funnel the lead is. */
const STATUS_POINTS: Record<Lead['status'], number> = {
  new: 1,
  contacted: 2,
  qualified: 3,
  converted: 3,
  lost: 0,
};

/**
 * Classifies a lead by rules, deterministically (the same lead and `now` always give the same
 * answer): a `lost` lead is `cold`; otherwise points for its status (new 1, contacted 2, qualified
 * or converted 3), +1 when it has a name, +1 when it changed in the last 7 days, −1 when it has
 * not changed for 90 days. 4 or more is `hot`, 2 or 3 `warm`, less `cold`.
 * @example
 * classifyLead({ ...lead, status: 'qualified', name: 'Ada' }, Date.now()) // 'hot'
 */
export function classifyLead(
  lead: Pick<Lead, 'status' | 'name' | 'updatedAt'>,
  now: number,
): LeadClassification {
  if (lead.status === 'lost') return 'cold';
  let points = STATUS_POINTS[lead.status];
  if (lead.name !== null) points += 1;
  const age = now - Date.parse(lead.updatedAt);
  if (age <= 7 * DAY_MS) points += 1;
  else if (age > 90 * DAY_MS) points -= 1;
  if (points >= 4) return 'hot';
  if (points >= 2) return 'warm';
  return 'cold';
}
