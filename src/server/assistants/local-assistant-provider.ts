import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/database.js';
import {
  type AssistantProvider,
  assistantInstructions,
  assistantName,
  type CreateAssistantRequest,
  type CreatedAssistant,
} from './assistant-provider.js';

/** The `model` recorded for local assistants: there is none. */
export const LOCAL_MODEL = 'local';

/**
 * Creates assistants without any external service: each is recorded in the `assistants` table
 * (provider `local`, no company yet) with an id `asst_local_<random>`. The service runs on it
 * when no `OPENAI_API_KEY` is configured.
 */
export class LocalAssistantProvider implements AssistantProvider {
  readonly name = 'local' as const;
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async createAssistant(request: CreateAssistantRequest): Promise<CreatedAssistant> {
    const id = `asst_local_${randomBytes(12).toString('base64url')}`;
    const name = assistantName(request.companyName);
    const instructions = assistantInstructions(request.companyName, request.location);
    const { rows } = await this.#db.query<{ created_at: Date | string }>(
      `INSERT INTO assistants (id, provider, name, instructions, model, demo_url)
       VALUES ($1, 'local', $2, $3, $4, $5)
       RETURNING created_at`,
      [id, name, instructions, LOCAL_MODEL, request.demoUrl],
    );
    const createdAt = rows[0]?.created_at ?? new Date();
    return {
      id,
      provider: 'local',
      name,
      instructions,
      model: LOCAL_MODEL,
      createdAt: (createdAt instanceof Date ? createdAt : new Date(createdAt)).toISOString(),
    };
  }
}
