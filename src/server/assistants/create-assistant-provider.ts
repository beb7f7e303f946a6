import type { OpenAIConfig } from '../config.js';
import type { Queryable } from '../db/database.js';
import type { AssistantProvider } from './assistant-provider.js';
import { LocalAssistantProvider } from './local-assistant-provider.js';
import { OpenAIAssistantProvider } from './openai-assistant-provider.js';

/**
 * The provider the service uses: OpenAI when `OPENAI_API_KEY` is configured (`openai` is set),
 * the local provider recording to `db` otherwise.
 * @example
 * const provider = createAssistantProvider(config.openai, app.db);
 */
export function createAssistantProvider(openai: OpenAIConfig | undefined, db: Queryable): AssistantProvider {
  return openai === undefined ? new LocalAssistantProvider(db) : new OpenAIAssistantProvider(openai);
}
