import type { AssistantProvider, CreatedAssistant } from '../assistants/assistant-provider.js';
import type { MappingStore } from '../company-assistants/mapping-store.js';
import type { Queryable } from '../db/database.js';

/** Longest company name and location, in characters. */
export const PROTOTYPE_FIELD_MAX_LENGTH = 200;

/** Input of {@link PrototypeService.createPrototype}, as validated by the route's schema. */
export type CreatePrototypeInput = { companyName: string; location: string };

/** A company created as a prototype. */
export type PrototypeCompany = {
  id: string;
  slug: string;
  name: string;
  location: string;
  createdAt: string;
};

/** Result of {@link PrototypeService.createPrototype}. */
export type Prototype = {
  companySlug: string;
  demoUrl: string;
  assistant: CreatedAssistant & { demoUrl: string };
  company: PrototypeCompany;
};

/** Options of {@link PrototypeService}. */
export type PrototypeServiceOptions = {
  /** The mapping store shared with the company-assistant routes. */
  mappings: MappingStore;
  /** Creates the assistant: OpenAI, or the local provider. */
  provider: AssistantProvider;
  /** Root of demo URLs, without a trailing slash: a prototype's is `<demoBaseUrl>/<slug>`. */
  demoBaseUrl: string;
};

type CompanyRow = { id: string; slug: string; name: string; location: string; created_at: Date | string };

/**
 * Creates prototypes: a company (slug from its name), an assistant from the provider, and the
 * company ↔ assistant mapping.
 *
 * 1. The slug is forecast (the base slug or its first free suffix) so that the provider gets the
 *    demo URL; a name that yields no slug, or a base whose suffixes are all taken, fails here,
 *    before an assistant is created.
 * 2. The provider creates the assistant. If it fails, nothing is stored.
 * 3. Company, assistant and mapping are stored in one Postgres transaction under the slug lock
 *    (if another instance took the forecast slug meanwhile, the next free one is used and the
 *    demo URL follows), then the mapping is cached both ways (30 days).
 */
export class PrototypeService {
  readonly #mappings: MappingStore;
  readonly #provider: AssistantProvider;
  readonly #demoBaseUrl: string;

  constructor(options: PrototypeServiceOptions) {
    this.#mappings = options.mappings;
    this.#provider = options.provider;
    this.#demoBaseUrl = options.demoBaseUrl;
  }

  /** Which provider creates the assistants. */
  get providerName(): AssistantProvider['name'] {
    return this.#provider.name;
  }

  /**
   * Creates a prototype.
   * @throws ServiceError `E_EMPTY_SLUG` when the name yields no slug, `E_SLUG_TAKEN` when every
   * suffix is taken, `E_UPSTREAM` / `E_UPSTREAM_TIMEOUT` when the provider fails.
   */
  async createPrototype(input: CreatePrototypeInput): Promise<Prototype> {
    const companyName = input.companyName.trim();
    const location = input.location.trim();
    const forecast = await this.#mappings.proposeSlug(companyName);
    const assistant = await this.#provider.createAssistant({
      companyName,
      location,
      slug: forecast,
      demoUrl: this.demoUrl(forecast),
    });

    let company: PrototypeCompany | undefined;
    const mapping = await this.#mappings.save({
      companyName,
      assistantId: assistant.id,
      data: { location, provider: assistant.provider },
      alsoStore: async (tx, stored) => {
        company = await insertCompany(tx, stored.companySlug, companyName, location);
        await recordAssistant(tx, assistant, company.id, this.demoUrl(company.slug));
      },
    });
    if (company === undefined) throw new Error('The prototype was stored without its company');
    const demoUrl = this.demoUrl(mapping.companySlug);
    return { companySlug: mapping.companySlug, demoUrl, assistant: { ...assistant, demoUrl }, company };
  }

  /** The demo URL of a slug. */
  demoUrl(slug: string): string {
    return `${this.#demoBaseUrl}/${slug}`;
  }
}

async function insertCompany(
  tx: Queryable,
  slug: string,
  name: string,
  location: string,
): Promise<PrototypeCompany> {
  const { rows } = await tx.query<CompanyRow>(
    `INSERT INTO companies (slug, name, location) VALUES ($1, $2, $3)
     RETURNING id, slug, name, location, created_at`,
    [slug, name, location],
  );
  const row = rows[0];
  if (row === undefined) throw new Error(`Inserting company ${slug} returned no row`);
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    location: row.location,
    createdAt: (row.created_at instanceof Date ? row.created_at : new Date(row.created_at)).toISOString(),
  };
}

/**
 * Records the assistant with its company. The local provider has recorded it already (without a
 * company): that row is linked and its demo URL set to the final one.
 */
async function recordAssistant(
  tx: Queryable,
  assistant: CreatedAssistant,
  companyId: string,
  demoUrl: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO assistants (id, company_id, provider, name, instructions, model, demo_url, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO UPDATE SET company_id = EXCLUDED.company_id, demo_url = EXCLUDED.demo_url`,
    [
      assistant.id,
      companyId,
      assistant.provider,
      assistant.name,
      assistant.instructions,
      assistant.model,
      demoUrl,
      assistant.createdAt,
    ],
  );
}
