import { ServiceError, ServiceErrorCode } from '../errors.js';
import {
  type AssistantProvider,
  assistantInstructions,
  assistantName,
  type CreateAssistantRequest,
  type CreatedAssistant,
} from './assistant-provider.js';

/** Options of {@link OpenAIAssistantProvider}: the `openai` part of the service config. */
export type OpenAIAssistantProviderOptions = {
  /** API root without a trailing slash, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  /** Model of the assistants created, e.g. `gpt-4o-mini`. */
  model: string;
  /** How long one call may take, response body included, in milliseconds. */
  timeoutMs: number;
  /** The API key, read only to build the `Authorization` header. */
  apiKey: () => string;
};

type AssistantObject = { id?: unknown; created_at?: unknown; name?: unknown; model?: unknown };
type ErrorObject = { error?: { message?: unknown; type?: unknown; code?: unknown } };

// The id must fit the mapping's assistant id (and the `assistants` table's check).
const ASSISTANT_ID = /^[A-Za-z0-9_-]{1,128}$/;
// Longest upstream error text quoted to the client.
const MAX_UPSTREAM_MESSAGE = 300;
// OpenAI-style secret keys, masked in any upstream text we pass on (OpenAI quotes part of a wrong key).
const KEY_LIKE = /\bsk-[A-Za-z0-9_*.-]+/g;

/**
 * Creates assistants with OpenAI's Assistants API (`POST <baseUrl>/assistants`, beta header
 * `assistants=v2`) through `fetch`: no SDK. Each call has a deadline covering the response body.
 * Failures are typed: `E_UPSTREAM` (unreachable, an error status, an answer without an assistant
 * id) and `E_UPSTREAM_TIMEOUT`. The API key never appears in an error message: the key itself
 * and anything shaped like an OpenAI key are masked in upstream text.
 */
export class OpenAIAssistantProvider implements AssistantProvider {
  readonly name = 'openai' as const;
  readonly #options: OpenAIAssistantProviderOptions;

  constructor(options: OpenAIAssistantProviderOptions) {
    this.#options = options;
  }

  async createAssistant(request: CreateAssistantRequest): Promise<CreatedAssistant> {
    const { baseUrl, model, timeoutMs } = this.#options;
    const name = assistantName(request.companyName);
    const instructions = assistantInstructions(request.companyName, request.location);
    const url = `${baseUrl}/assistants`;
    let status: number;
    let text: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#options.apiKey()}`,
          'content-type': 'application/json',
          'openai-beta': 'assistants=v2',
        },
        body: JSON.stringify({ model, name, instructions }),
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (isTimeout(error)) {
        throw new ServiceError(
          ServiceErrorCode.UpstreamTimeout,
          `OpenAI did not answer within ${timeoutMs} ms (POST ${url})`,
        );
      }
      throw new ServiceError(
        ServiceErrorCode.Upstream,
        `Could not reach OpenAI at ${url}: ${this.#redact(describeNetworkError(error))}`,
      );
    }

    if (status < 200 || status > 299) {
      throw new ServiceError(
        ServiceErrorCode.Upstream,
        `OpenAI refused to create the assistant (HTTP ${status}${this.#upstreamReason(text)})`,
      );
    }
    const body = parseJson<AssistantObject>(text);
    if (body === undefined || typeof body.id !== 'string' || !ASSISTANT_ID.test(body.id)) {
      throw new ServiceError(
        ServiceErrorCode.Upstream,
        `OpenAI answered HTTP ${status} without a usable assistant id`,
      );
    }
    const createdAt =
      typeof body.created_at === 'number' && Number.isFinite(body.created_at)
        ? new Date(body.created_at * 1000)
        : new Date();
    return {
      id: body.id,
      provider: 'openai',
      name: typeof body.name === 'string' && body.name !== '' ? body.name : name,
      instructions,
      model: typeof body.model === 'string' && body.model !== '' ? body.model : model,
      createdAt: createdAt.toISOString(),
    };
  }

  /** `: <type/code>: <message>` from an OpenAI error body, masked and cut; `''` when there is none. */
  #upstreamReason(text: string): string {
    const error = parseJson<ErrorObject>(text)?.error;
    const parts = [error?.type, error?.code, error?.message].filter(
      (p): p is string => typeof p === 'string' && p !== '',
    );
    if (parts.length === 0) return '';
    const reason = this.#redact(parts.join(': '));
    return `: ${reason.length > MAX_UPSTREAM_MESSAGE ? `${reason.slice(0, MAX_UPSTREAM_MESSAGE)}…` : reason}`;
  }

  #redact(text: string): string {
    return text.split(this.#options.apiKey()).join('***').replace(KEY_LIKE, 'sk-***');
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}

/** undici's `fetch failed` says little; its cause has the code (ECONNREFUSED, ENOTFOUND ...). */
function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error.message;
}

function parseJson<T>(text: string): T | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}
