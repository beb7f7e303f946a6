/** Union of the providers an assistant can come from. */
export type AssistantProviderName = 'local' | 'openai';

/** What a prototype asks its assistant provider for. */
export type CreateAssistantRequest = {
  /** The company's name, trimmed. */
  companyName: string;
  /** Where the company is, trimmed (a city, region or country). */
  location: string;
  /** The slug the prototype expects to get; final once the prototype is stored. */
  slug: string;
  /** The demo URL of that slug. */
  demoUrl: string;
};

/** An assistant a provider created. */
export type CreatedAssistant = {
  /** The provider's id: `asst_…` at OpenAI, `asst_local_…` locally. */
  id: string;
  provider: AssistantProviderName;
  name: string;
  instructions: string;
  model: string;
  /** ISO 8601 time the provider created it. */
  createdAt: string;
};

/**
 * Creates the assistant of a prototype. Implementations: `OpenAIAssistantProvider` (OpenAI's
 * Assistants API) and `LocalAssistantProvider` (recorded in Postgres, for running without an
 * OpenAI key); `createAssistantProvider` picks one. Nothing is retried: creating an assistant is
 * not idempotent.
 */
export interface AssistantProvider {
  readonly name: AssistantProviderName;
  /**
   * @throws ServiceError `E_UPSTREAM` when the provider fails or refuses, `E_UPSTREAM_TIMEOUT` when
   * it does not answer in time. Messages never contain credentials.
   */
  createAssistant(request: CreateAssistantRequest): Promise<CreatedAssistant>;
}

/** The name given to a company's assistant. */
export function assistantName(companyName: string): string {
  return `${companyName} Assistant`;
}

/** The instructions given to a company's assistant. */
export function assistantInstructions(companyName: string, location: string): string {
  return [
    `You are the website assistant of ${companyName}, a company located in ${location}.`,
    'Answer visitors’ questions about its products and services in a friendly, concise way,',
    'and when a visitor is interested, offer to have the team call them back and ask for their',
    'name and phone number. Never invent prices or commitments you were not given.',
  ].join(' ');
}
