import { describeValue, validationError } from '../errors.js';

/** Where a lead is in the sales funnel. */
export const LEAD_STATUSES = ['new', 'contacted', 'qualified', 'converted', 'lost'] as const;
/** How promising a lead is; `null` until classified. */
export const LEAD_CLASSIFICATIONS = ['hot', 'warm', 'cold'] as const;
/** Longest lead or organization name. */
export const NAME_MAX_LENGTH = 200;

/** Union of {@link LEAD_STATUSES}. */
export type LeadStatus = (typeof LEAD_STATUSES)[number];
/** Union of {@link LEAD_CLASSIFICATIONS}. */
export type LeadClassification = (typeof LEAD_CLASSIFICATIONS)[number];

/**
 * A lead: one phone number in one organization. Plain JSON (timestamps are ISO 8601 strings), so
 * a lead read from Postgres, from memory or from Redis is the same value.
 */
export type Lead = {
  id: string;
  organizationId: string;
  /** E.164, e.g. `+14155550123`. */
  phone: string;
  name: string | null;
  status: LeadStatus;
  classification: LeadClassification | null;
  createdAt: string;
  updatedAt: string;
};

/** An organization leads belong to; plain JSON like {@link Lead}. */
export type Organization = {
  id: string;
  name: string;
  slug: string;
  /** The numbers it is reached on, E.164, sorted. */
  phoneNumbers: string[];
  /** The organization lookups fall back to when no other matches. */
  isDefault: boolean;
};

/** The fields of a lead that `PATCH /api/leads/:id` may change. */
export type LeadChanges = Partial<Pick<Lead, 'name' | 'status' | 'classification'>>;

/** What a lead id looks like (a UUID, any version). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const PATCHABLE = new Set(['name', 'status', 'classification']);

/**
 * Validates a patch from a client: an object with at least one of `status`, `classification`
 * (or `null`) and `name` (or `null`; trimmed, 1 to 200 characters), and nothing else.
 * @throws ServiceError `E_VALIDATION` (400) naming the field and the value.
 */
export function parseLeadChanges(input: unknown): LeadChanges {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw validationError(
      `Expected a JSON object with status, classification or name, got ${describeValue(input)}`,
    );
  }
  const fields = Object.keys(input);
  const unknown = fields.filter((f) => !PATCHABLE.has(f));
  if (unknown.length > 0) {
    throw validationError(
      `Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => JSON.stringify(f)).join(', ')}: a lead's status, classification and name can be changed`,
    );
  }
  if (fields.length === 0) throw validationError('Expected at least one of status, classification or name');

  const body = input as Record<string, unknown>;
  const changes: LeadChanges = {};
  if ('status' in body) changes.status = oneOf('status', body.status, LEAD_STATUSES);
  if ('classification' in body) {
    changes.classification =
      body.classification === null
        ? null
        : oneOf('classification', body.classification, LEAD_CLASSIFICATIONS);
  }
  if ('name' in body) {
    const name = body.name;
    if (name === null) changes.name = null;
    else if (typeof name !== 'string' || name.trim().length === 0 || name.trim().length > NAME_MAX_LENGTH) {
      throw validationError(
        `Expected name to be null or 1 to ${NAME_MAX_LENGTH} characters, got ${describeValue(name)}`,
      );
    } else changes.name = name.trim();
  }
  return changes;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw validationError(`Expected ${field} to be one of ${allowed.join(', ')}, got ${describeValue(value)}`);
}
