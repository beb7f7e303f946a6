import type { Queryable } from '../db/database.js';
import type { ConversationMessage, ConversationSummary, MessageRole, NewMessage } from './conversation.js';

type MessageRow = { id: string; role: MessageRole; content: string; created_at: Date | string };
type SummaryRow = { summary: string | null; summary_updated_at: Date | string | null };

/**
 * Conversations and their messages in Postgres: the source of truth, read without any cache.
 * Nothing here knows about caching.
 */
export class ConversationRepository {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  /**
   * Stores a message in the conversation of `phone` (E.164) in an organization, creating the
   * conversation if needed, in one statement: racing appends, in any number of processes, share
   * one conversation (the unique (organization_id, phone) pair).
   */
  async appendMessage(
    organizationId: string,
    phone: string,
    message: NewMessage,
  ): Promise<ConversationMessage> {
    const { rows } = await this.#db.query<MessageRow>(
      `WITH conversation AS (
         INSERT INTO conversations (organization_id, phone) VALUES ($1, $2)
         ON CONFLICT (organization_id, phone) DO UPDATE SET updated_at = now()
         RETURNING id
       )
       INSERT INTO conversation_messages (conversation_id, role, content)
       SELECT id, $3, $4 FROM conversation
       RETURNING id::text AS id, role, content, created_at`,
      [organizationId, phone, message.role, message.content],
    );
    const row = rows[0];
    if (row === undefined) throw new Error(`Appending to the conversation of ${phone} returned no row`);
    return toMessage(row);
  }

  /**
   * The latest `limit` messages of the conversation of `phone` in an organization, oldest first;
   * empty when there is no conversation.
   */
  async latestMessages(organizationId: string, phone: string, limit: number): Promise<ConversationMessage[]> {
    const { rows } = await this.#db.query<MessageRow>(
      `SELECT m.id::text AS id, m.role, m.content, m.created_at
       FROM conversation_messages m JOIN conversations c ON c.id = m.conversation_id
       WHERE c.organization_id = $1 AND c.phone = $2
       ORDER BY m.id DESC LIMIT $3`,
      [organizationId, phone, limit],
    );
    return rows.reverse().map(toMessage);
  }

  /** The summary of the conversation of `phone` in an organization (both fields `null` when none). */
  async findSummary(organizationId: string, phone: string): Promise<ConversationSummary> {
    const { rows } = await this.#db.query<SummaryRow>(
      'SELECT summary, summary_updated_at FROM conversations WHERE organization_id = $1 AND phone = $2',
      [organizationId, phone],
    );
    return toSummary(rows[0]);
  }

  /** Replaces the summary of the conversation of `phone`, creating the conversation if needed. */
  async saveSummary(organizationId: string, phone: string, summary: string): Promise<ConversationSummary> {
    const { rows } = await this.#db.query<SummaryRow>(
      `INSERT INTO conversations (organization_id, phone, summary, summary_updated_at)
       VALUES ($1, $2, $3, now())
       ON CONFLICT (organization_id, phone)
       DO UPDATE SET summary = excluded.summary, summary_updated_at = now(), updated_at = now()
       RETURNING summary, summary_updated_at`,
      [organizationId, phone, summary],
    );
    return toSummary(rows[0]);
  }
}

function toMessage(row: MessageRow): ConversationMessage {
  return { id: row.id, role: row.role, content: row.content, createdAt: toIso(row.created_at) };
}

function toSummary(row: SummaryRow | undefined): ConversationSummary {
  if (row === undefined || row.summary === null) return { summary: null, updatedAt: null };
  return {
    summary: row.summary,
    updatedAt: row.summary_updated_at === null ? null : toIso(row.summary_updated_at),
  };
}

/** node-postgres and PGlite both parse `timestamptz` into a `Date`; JSON wants a string. */
function toIso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
