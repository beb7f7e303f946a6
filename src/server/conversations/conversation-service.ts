import type { CountryCode } from 'libphonenumber-js/max';
import type { CacheScope, Duration } from '../../index.js';
import type { Organization } from '../leads/lead.js';
import type { OrganizationMatch } from '../leads/lead-service.js';
import { DEFAULT_PHONE_REGION, normalisePhone } from '../leads/phone.js';
import {
  CONTEXT_MAX_LIMIT,
  type ConversationMessage,
  type ConversationSummary,
  parseLimit,
  parseMessage,
  parseSummary,
} from './conversation.js';
import type { ConversationRepository } from './conversation-repository.js';

/** Cache namespace of conversations; each organization is a tenant in it. */
export const CONVERSATIONS_NAMESPACE = 'conversations';
/** How long a conversation's context is cached: about one conversation's span. */
export const CONTEXT_TTL: Duration = '30m';
/** How long a conversation's summary is cached: it changes rarely, and writes invalidate it. */
export const SUMMARY_TTL: Duration = '24h';

/** Resolves the `org` a request names (`LeadService` does: id or slug → phone → default). */
export interface OrganizationResolver {
  resolveOrganization(
    ref: string | undefined,
  ): Promise<{ organization: Organization; organizationMatch: OrganizationMatch }>;
}

/** Names a conversation: a caller's phone number in an organization. */
export type ConversationRef = {
  /** The caller's number in any format libphonenumber-js understands; stored as E.164. */
  phone: string;
  /** An organization id, slug or phone number; the default organization when absent or unknown. */
  org?: string;
};

/** Which conversation a result belongs to. */
export type ConversationOf = {
  organizationId: string;
  organizationMatch: OrganizationMatch;
  /** E.164. */
  phone: string;
};

/** Result of {@link ConversationService.getContext}. */
export type ConversationContext = ConversationOf & {
  /** The limit applied. */
  limit: number;
  /** The latest `limit` messages, oldest first. */
  messages: ConversationMessage[];
  /** `miss` when this call queried Postgres; `hit` when the cache (or a running load) answered. */
  cache: 'hit' | 'miss';
};

/** Result of {@link ConversationService.getSummary} and {@link ConversationService.putSummary}. */
export type SummaryOf = ConversationOf & ConversationSummary & { cache: 'hit' | 'miss' };

/** Options of {@link ConversationService}. */
export type ConversationServiceOptions = {
  repository: ConversationRepository;
  /** Resolves the organization a request names. */
  organizations: OrganizationResolver;
  /** The cache root; the service uses its `conversations` namespace. */
  cache: CacheScope;
  /**
   * Region of numbers written without a country code.
   * @default 'US'
   */
  defaultRegion?: CountryCode;
};

/**
 * Conversation context (latest messages) and summaries per organization and caller phone number,
 * read-through cached in front of Postgres.
 *
 * Cache layout, per organization (tenant `<orgId>` of namespace `conversations`):
 * - `context:<e164>` → the latest {@link CONTEXT_MAX_LIMIT} messages (oldest first), tagged
 *   `context:<e164>`, for {@link CONTEXT_TTL}. Every read with a smaller `limit` slices this one
 *   entry, so the cache holds one bounded list per conversation whatever limits clients ask for.
 * - `summary:<e164>` → the summary, tagged `summary:<e164>`, for {@link SUMMARY_TTL}.
 *
 * The namespace is kept out of the memory tier (`{ memory: false }`), so a read on any instance
 * that starts after an append returned sees it. Writes go to Postgres first, then invalidate the
 * entry's tag. Invalidating after the write means a read that loaded the old rows while the write
 * ran cannot cache them: its entry was recorded under the tag version the invalidation replaces.
 */
export class ConversationService {
  readonly #repository: ConversationRepository;
  readonly #organizations: OrganizationResolver;
  readonly #cache: CacheScope;
  readonly #region: CountryCode;

  constructor(options: ConversationServiceOptions) {
    this.#repository = options.repository;
    this.#organizations = options.organizations;
    // Kept out of the memory tier: the next turn of a conversation may be served by another
    // instance right after this one appended, before the bus could drop a memory copy there; every
    // read asks Redis (one round trip with the tag versions), Postgres only answers misses.
    this.#cache = options.cache.namespace(CONVERSATIONS_NAMESPACE, { memory: false });
    this.#region = options.defaultRegion ?? DEFAULT_PHONE_REGION;
  }

  /**
   * Appends a message to the conversation of `phone` in an organization (created on the first
   * message), then invalidates the conversation's cached context.
   * @throws ServiceError `E_INVALID_PHONE` for a phone that is not a valid number; `E_VALIDATION`
   * for a bad role or content (empty, over {@link CONTENT_MAX_LENGTH} characters: never truncated);
   * `E_NOT_FOUND` when no organization matches and there is no default.
   */
  async appendMessage(
    input: ConversationRef & { role: unknown; content: unknown },
  ): Promise<ConversationOf & { message: ConversationMessage }> {
    const message = parseMessage(input.role, input.content);
    const of = await this.#resolve(input);
    const stored = await this.#repository.appendMessage(of.organizationId, of.phone, message);
    await this.#tenant(of).deleteByTag(contextTag(of.phone));
    return { ...of, message: stored };
  }

  /**
   * The latest `limit` messages (default 20, at most {@link CONTEXT_MAX_LIMIT}) of the
   * conversation of `phone`, oldest first; empty for a conversation that has none.
   * @throws ServiceError `E_VALIDATION` for a bad limit, `E_INVALID_PHONE`, `E_NOT_FOUND` as
   * {@link appendMessage}.
   */
  async getContext(input: ConversationRef & { limit?: string }): Promise<ConversationContext> {
    const limit = parseLimit(input.limit);
    const of = await this.#resolve(input);
    let loaded = false;
    const latest = await this.#tenant(of).getOrSet(
      `context:${of.phone}`,
      async () => {
        loaded = true;
        return this.#repository.latestMessages(of.organizationId, of.phone, CONTEXT_MAX_LIMIT);
      },
      { ttl: CONTEXT_TTL, tags: [contextTag(of.phone)] },
    );
    return { ...of, limit, messages: latest.slice(-limit), cache: loaded ? 'miss' : 'hit' };
  }

  /**
   * The summary of the conversation of `phone` (`summary: null` when none was written).
   * @throws ServiceError `E_INVALID_PHONE`, `E_NOT_FOUND` as {@link appendMessage}.
   */
  async getSummary(input: ConversationRef): Promise<SummaryOf> {
    const of = await this.#resolve(input);
    let loaded = false;
    const summary = await this.#tenant(of).getOrSet(
      `summary:${of.phone}`,
      async () => {
        loaded = true;
        return this.#repository.findSummary(of.organizationId, of.phone);
      },
      { ttl: SUMMARY_TTL, tags: [summaryTag(of.phone)] },
    );
    return { ...of, ...summary, cache: loaded ? 'miss' : 'hit' };
  }

  /**
   * Replaces the summary of the conversation of `phone` (creating the conversation if needed),
   * then invalidates the cached summary.
   * @throws ServiceError `E_VALIDATION` for a summary that is not a string of 1 to
   * {@link SUMMARY_MAX_LENGTH} characters (never truncated), `E_INVALID_PHONE`, `E_NOT_FOUND`.
   */
  async putSummary(input: ConversationRef & { summary: unknown }): Promise<Omit<SummaryOf, 'cache'>> {
    const text = parseSummary(input.summary);
    const of = await this.#resolve(input);
    const saved = await this.#repository.saveSummary(of.organizationId, of.phone, text);
    await this.#tenant(of).deleteByTag(summaryTag(of.phone));
    return { ...of, ...saved };
  }

  async #resolve(input: ConversationRef): Promise<ConversationOf> {
    const phone = normalisePhone(input.phone, this.#region);
    const { organization, organizationMatch } = await this.#organizations.resolveOrganization(input.org);
    return { organizationId: organization.id, organizationMatch, phone };
  }

  #tenant(of: ConversationOf): CacheScope {
    return this.#cache.forTenant(of.organizationId);
  }
}

/** The tag on the cached context of the conversation of `phone` (E.164), in its organization's scope. */
export function contextTag(phone: string): string {
  return `context:${phone}`;
}

/** The tag on the cached summary of the conversation of `phone` (E.164), in its organization's scope. */
export function summaryTag(phone: string): string {
  return `summary:${phone}`;
}
