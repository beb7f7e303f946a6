import { describeValue, validationError } from '../errors.js';

/** Who wrote a message. */
export const MESSAGE_ROLES = ['user', 'assistant', 'system'] as const;
/** Longest message, in characters (Unicode code points, as Postgres counts them). Never truncated. */
export const CONTENT_MAX_LENGTH = 4000;
/** Longest summary, in characters (code points). Never truncated. */
export const SUMMARY_MAX_LENGTH = 8000;
/** Messages a context read returns when no `limit` is given. */
export const CONTEXT_DEFAULT_LIMIT = 20;
/** Most messages a context read returns, and how many the cached context keeps. */
export const CONTEXT_MAX_LIMIT = 50;

/** Union of {@link MESSAGE_ROLES}. */
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/** One message of a conversation; plain JSON, the same read from Postgres, memory or Redis. */
export type ConversationMessage = {
  /** Increases with every message stored (a Postgres identity, as a string). */
  id: string;
  role: MessageRole;
  content: string;
  createdAt: string;
};

/** A conversation's summary; both fields are `null` until one is written. */
export type ConversationSummary = {
  summary: string | null;
  updatedAt: string | null;
};

/** The message of an append, validated by {@link parseMessage}. */
export type NewMessage = { role: MessageRole; content: string };

/**
 * Validates a message's role and content: `role` one of `user`, `assistant`, `system`; `content`
 * a string of 1 to {@link CONTENT_MAX_LENGTH} characters, well-formed Unicode without NUL.
 * @throws ServiceError `E_VALIDATION` (400) naming the field, the bad value or the limit.
 */
export function parseMessage(role: unknown, content: unknown): NewMessage {
  if (typeof role !== 'string' || !(MESSAGE_ROLES as readonly string[]).includes(role)) {
    throw validationError(
      `Expected role to be one of ${MESSAGE_ROLES.join(', ')}, got ${describeValue(role)}`,
    );
  }
  return { role: role as MessageRole, content: parseText('content', content, CONTENT_MAX_LENGTH) };
}

/**
 * Validates a summary: a string of 1 to {@link SUMMARY_MAX_LENGTH} characters, well-formed
 * Unicode without NUL.
 * @throws ServiceError `E_VALIDATION` (400) naming the bad value or the limit.
 */
export function parseSummary(summary: unknown): string {
  return parseText('summary', summary, SUMMARY_MAX_LENGTH);
}

/**
 * Parses the `limit` of a context read: a whole number from 1 to {@link CONTEXT_MAX_LIMIT};
 * {@link CONTEXT_DEFAULT_LIMIT} when absent.
 * @throws ServiceError `E_VALIDATION` (400) naming the value and the range.
 */
export function parseLimit(value: string | undefined): number {
  if (value === undefined) return CONTEXT_DEFAULT_LIMIT;
  const parsed = /^\d{1,6}$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= 1 && parsed <= CONTEXT_MAX_LIMIT)) {
    throw validationError(
      `Invalid limit ${describeValue(value)}: expected a whole number from 1 to ${CONTEXT_MAX_LIMIT}`,
    );
  }
  return parsed;
}

function parseText(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw validationError(`Expected ${field} to be a non-empty string, got ${describeValue(value)}`);
  }
  const length = codePoints(value);
  if (length > max) {
    throw validationError(
      `${capitalise(field)} is too long: ${length} characters, the limit is ${max} (it is never truncated)`,
    );
  }
  // Postgres text cannot hold NUL, and a lone surrogate cannot be stored as UTF-8 unchanged.
  if (value.includes('\u0000')) throw validationError(`${capitalise(field)} must not contain NUL characters`);
  if (!value.isWellFormed()) {
    throw validationError(`${capitalise(field)} is not well-formed Unicode (it has a lone surrogate)`);
  }
  return value;
}

/** Code points in `value`: what Postgres's `length()` counts. */
function codePoints(value: string): number {
  let count = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
