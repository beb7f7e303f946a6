import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, ErrorReply, MultiErrorReply, RESP_TYPES } from 'redis';

/**
 * A stand-in for the Upstash REST API, speaking the protocol as `@upstash/redis` uses it, in front
 * of a real redis-server:
 * - `POST /` with a JSON array (`["SET","k","v","PX",100]`) runs one command: `{ result }`, or
 *   HTTP 400 `{ error }` for a Redis error reply;
 * - `POST /pipeline` and `POST /multi-exec` with an array of commands answer an array of
 *   `{ result }` / `{ error }`, one per command (`/multi-exec` inside MULTI/EXEC);
 * - `Authorization: Bearer <token>` is required (HTTP 401 otherwise);
 * - with `Upstash-Encoding: base64` every string in a result is base64 of its bytes, except a
 *   top-level `OK`, as Upstash does (the client decodes both forms of `OK` alike).
 * Commands go to Redis through node-redis `sendCommand`, with the offline queue off so that a
 * dead Redis answers HTTP 500 at once.
 */
export class UpstashRestServer {
  readonly token: string;
  /** HTTP requests received, rejected ones included. */
  requests = 0;
  readonly #server: Server;
  readonly #redis: ReturnType<typeof createRedis>;
  #dropNext = 0;

  private constructor(server: Server, redis: ReturnType<typeof createRedis>, token: string) {
    this.#server = server;
    this.#redis = redis;
    this.token = token;
  }

  /** Starts on a free loopback port, forwarding to the Redis at `redisUrl`. */
  static async start(redisUrl: string, token = 'test-token'): Promise<UpstashRestServer> {
    const redis = createRedis(redisUrl);
    await redis.connect();
    const server = createServer();
    const rest = new UpstashRestServer(server, redis, token);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      rest.#handle(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return rest;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The next `count` requests get their connection destroyed without an answer (a network failure). */
  dropNext(count: number): void {
    this.#dropNext = count;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    this.#server.close();
    await once(this.#server, 'close');
    if (this.#redis.isOpen) this.#redis.destroy();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests += 1;
    if (this.#dropNext > 0) {
      this.#dropNext -= 1;
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      reply(res, 401, { error: 'Unauthorized' });
      return;
    }
    if (req.method !== 'POST') {
      reply(res, 405, { error: 'Only POST is supported here' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      reply(res, 400, { error: 'ERR failed to parse command' });
      return;
    }
    const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
    const path = (req.url ?? '/').replace(/\/+$/, '') || '/';
    if (path === '/') {
      if (!isCommand(body)) return reply(res, 400, { error: 'ERR expected a JSON array command' });
      try {
        reply(res, 200, { result: encode(await this.#redis.sendCommand(args(body)), base64, true) });
      } catch (error) {
        reply(res, error instanceof ErrorReply ? 400 : 500, { error: messageOf(error) });
      }
      return;
    }
    if (path !== '/pipeline' && path !== '/multi-exec') return reply(res, 404, { error: 'Not found' });
    if (!Array.isArray(body) || !body.every(isCommand)) {
      return reply(res, 400, { error: 'ERR expected a JSON array of commands' });
    }
    const commands = body.map(args);
    if (path === '/pipeline') {
      const settled = await Promise.allSettled(commands.map((c) => this.#redis.sendCommand(c)));
      const failure = settled.find((s) => s.status === 'rejected' && !(s.reason instanceof ErrorReply));
      if (failure !== undefined)
        return reply(res, 500, { error: messageOf((failure as PromiseRejectedResult).reason) });
      return reply(
        res,
        200,
        settled.map((s) =>
          s.status === 'fulfilled'
            ? { result: encode(s.value, base64, true) }
            : { error: messageOf(s.reason) },
        ),
      );
    }
    const multi = this.#redis.multi();
    for (const command of commands) multi.sendCommand(command);
    let replies: unknown[];
    try {
      replies = (await multi.exec()) as unknown[];
    } catch (error) {
      // MULTI/EXEC ran, and some commands failed: per-command answers, like a pipeline.
      if (error instanceof MultiErrorReply) replies = error.replies;
      else return reply(res, error instanceof ErrorReply ? 400 : 500, { error: messageOf(error) });
    }
    reply(
      res,
      200,
      replies.map((r) =>
        r instanceof ErrorReply ? { error: r.message } : { result: encode(r, base64, true) },
      ),
    );
  }
}

function createRedis(url: string) {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { reconnectStrategy: () => 50 },
  }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer });
  // Connection errors surface as failed commands (HTTP 500); the listener keeps them off stderr.
  client.on('error', () => undefined);
  return client;
}

function isCommand(value: unknown): value is Array<string | number | boolean> {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
  );
}

function args(command: Array<string | number | boolean>): string[] {
  return command.map(String);
}

/** A Redis reply as Upstash puts it in JSON; `top` marks the reply itself (not an element of it). */
function encode(value: unknown, base64: boolean, top: boolean): unknown {
  if (Buffer.isBuffer(value)) {
    if (!base64 || (top && value.toString('latin1') === 'OK')) return value.toString('utf8');
    return value.toString('base64');
  }
  if (Array.isArray(value)) return value.map((v) => encode(v, base64, false));
  if (typeof value === 'bigint') return Number(value);
  return value ?? null;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
