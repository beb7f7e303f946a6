import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the stand-in received. */
export type RecordedRequest = {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
};

/** How the stand-in answers a request: status and JSON body (a string is sent as is), or `'hang'`. */
export type StandInReply = { status: number; body: unknown } | 'hang';

/**
 * A small local HTTP server standing in for OpenAI's Assistants API in tests: it records every
 * request and answers with what the test says (by default, a created assistant like OpenAI's).
 */
export class OpenAIStandIn {
  readonly requests: RecordedRequest[] = [];
  #server: Server | undefined;
  #reply: (request: RecordedRequest) => StandInReply | Promise<StandInReply> = (request) =>
    createdAssistant(request);
  readonly #hanging = new Set<ServerResponse>();

  /** The API root to configure, e.g. `http://127.0.0.1:41234/v1`. */
  get baseUrl(): string {
    const address = this.#server?.address() as AddressInfo | null | undefined;
    if (address == null) throw new Error('The stand-in is not started');
    return `http://127.0.0.1:${address.port}/v1`;
  }

  /** Forgets the recorded requests and answers with created assistants again. */
  reset(): void {
    this.requests.length = 0;
    this.#reply = (request) => createdAssistant(request);
  }

  /** Sets how the next requests are answered. */
  replyWith(reply: (request: RecordedRequest) => StandInReply | Promise<StandInReply>): void {
    this.#reply = reply;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // kept as text
        }
        const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
        this.requests.push(recorded);
        void Promise.resolve(this.#reply(recorded)).then((reply) => {
          if (reply === 'hang') {
            this.#hanging.add(res);
            return;
          }
          const payload = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
          res.writeHead(reply.status, { 'content-type': 'application/json' }).end(payload);
        });
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }
}

let counter = 0;

/** A 200 answer like OpenAI's to `POST /v1/assistants`. */
export function createdAssistant(request: RecordedRequest): StandInReply {
  const body = request.body as { model?: string; name?: string; instructions?: string };
  counter += 1;
  return {
    status: 200,
    body: {
      id: `asst_standin${String(counter).padStart(6, '0')}`,
      object: 'assistant',
      created_at: 1_700_000_000,
      name: body.name,
      description: null,
      model: body.model,
      instructions: body.instructions,
      tools: [],
      metadata: {},
    },
  };
}
