import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalAssistantProvider } from '../../src/server/assistants/local-assistant-provider.js';
import { createAssistantProvider } from '../../src/server/assistants/create-assistant-provider.js';
import { OpenAIAssistantProvider } from '../../src/server/assistants/openai-assistant-provider.js';
import { loadConfig } from '../../src/server/config.js';
import type { Database } from '../../src/server/db/database.js';
import { runMigrations } from '../../src/server/db/migrate.js';
import { ServiceError } from '../../src/server/errors.js';
import { memoryDatabase } from '../support/pglite.js';
import { OpenAIStandIn } from './openai-stand-in.js';

const KEY = 'sk-test-Zx81kQ0rT4pSecretKey9';
const REQUEST = {
  companyName: 'Acme Solar',
  location: 'Austin, Texas',
  slug: 'acme-solar',
  demoUrl: 'http://demo.test/demo/acme-solar',
};

const standIn = new OpenAIStandIn();
let db: Database;
beforeAll(async () => {
  await standIn.start();
  db = memoryDatabase();
  await runMigrations(db);
});
afterAll(async () => {
  await standIn.stop();
  await db.close();
});
beforeEach(() => {
  standIn.reset();
});

function openai(overrides: Partial<{ baseUrl: string; timeoutMs: number; model: string }> = {}) {
  return new OpenAIAssistantProvider({
    baseUrl: standIn.baseUrl,
    model: 'gpt-4o-mini',
    timeoutMs: 5000,
    apiKey: () => KEY,
    ...overrides,
  });
}

/** The ServiceError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ServiceError);
  return error as ServiceError;
}

describe('OpenAIAssistantProvider', () => {
  it('creates an assistant with POST /assistants, the key as bearer and the v2 beta header', async () => {
    const created = await openai().createAssistant(REQUEST);
    expect(standIn.requests).toHaveLength(1);
    const [request] = standIn.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/v1/assistants' });
    expect(request?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request?.headers['openai-beta']).toBe('assistants=v2');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.body).toEqual({
      model: 'gpt-4o-mini',
      name: 'Acme Solar Assistant',
      instructions: expect.stringContaining('Acme Solar, a company located in Austin, Texas'),
    });
    expect(created).toEqual({
      id: expect.stringMatching(/^asst_standin\d+$/),
      provider: 'openai',
      name: 'Acme Solar Assistant',
      model: 'gpt-4o-mini',
      instructions: (request?.body as { instructions: string }).instructions,
      createdAt: new Date(1_700_000_000_000).toISOString(),
    });
  });

  it('uses the configured model', async () => {
    const created = await openai({ model: 'gpt-4.1-nano' }).createAssistant(REQUEST);
    expect((standIn.requests[0]?.body as { model: string }).model).toBe('gpt-4.1-nano');
    expect(created.model).toBe('gpt-4.1-nano');
  });

  it('turns an error status into E_UPSTREAM with OpenAI’s reason, never the key', async () => {
    standIn.replyWith(() => ({
      status: 401,
      body: {
        error: {
          message: `Incorrect API key provided: ${KEY}. You can find your API key at https://platform.openai.com.`,
          type: 'invalid_request_error',
          code: 'invalid_api_key',
        },
      },
    }));
    const error = await failure(openai().createAssistant(REQUEST));
    expect(error.code).toBe('E_UPSTREAM');
    expect(error.statusCode).toBe(502);
    expect(error.message).toContain('HTTP 401');
    expect(error.message).toContain('invalid_api_key');
    expect(error.message).not.toContain(KEY);
    expect(error.message).not.toContain('Zx81kQ0rT4p');
    expect(JSON.stringify(error)).not.toContain(KEY);
  });

  it('masks partially shown keys too', async () => {
    standIn.replyWith(() => ({
      status: 401,
      body: { error: { message: 'Incorrect API key provided: sk-proj-****************abcd.' } },
    }));
    const error = await failure(openai().createAssistant(REQUEST));
    expect(error.message).toContain('sk-***');
    expect(error.message).not.toContain('abcd');
  });

  it('answers E_UPSTREAM for a 500 with a non-JSON body, and for a 200 without an id', async () => {
    standIn.replyWith(() => ({ status: 500, body: '<html>Bad gateway</html>' }));
    const crashed = await failure(openai().createAssistant(REQUEST));
    expect(crashed.code).toBe('E_UPSTREAM');
    expect(crashed.message).toBe('OpenAI refused to create the assistant (HTTP 500)');

    for (const body of [{ object: 'assistant' }, { id: 'no spaces allowed' }, 'not json', [1, 2]]) {
      standIn.replyWith(() => ({ status: 200, body }));
      const error = await failure(openai().createAssistant(REQUEST));
      expect(error.code).toBe('E_UPSTREAM');
      expect(error.message).toMatch(/without a usable assistant id/);
    }
  });

  it('gives up after timeoutMs with E_UPSTREAM_TIMEOUT when OpenAI does not answer', async () => {
    standIn.replyWith(() => 'hang');
    const error = await failure(openai({ timeoutMs: 200 }).createAssistant(REQUEST));
    expect(error.code).toBe('E_UPSTREAM_TIMEOUT');
    expect(error.statusCode).toBe(504);
    expect(error.message).toContain('200 ms');
    expect(standIn.requests).toHaveLength(1);
  });

  it('answers E_UPSTREAM naming the cause when OpenAI cannot be reached', async () => {
    const closed = new OpenAIStandIn();
    await closed.start();
    const baseUrl = closed.baseUrl;
    await closed.stop();
    const error = await failure(openai({ baseUrl }).createAssistant(REQUEST));
    expect(error.code).toBe('E_UPSTREAM');
    expect(error.message).toContain(`Could not reach OpenAI at ${baseUrl}/assistants`);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).not.toContain(KEY);
  });
});

describe('LocalAssistantProvider', () => {
  it('records the assistant in Postgres with an asst_local_ id, without a company yet', async () => {
    const provider = new LocalAssistantProvider(db);
    const first = await provider.createAssistant(REQUEST);
    const second = await provider.createAssistant(REQUEST);
    expect(first.id).toMatch(/^asst_local_[A-Za-z0-9_-]{16}$/);
    expect(second.id).not.toBe(first.id);
    expect(first).toMatchObject({ provider: 'local', name: 'Acme Solar Assistant', model: 'local' });
    const { rows } = await db.query(
      'SELECT id, company_id, provider, name, instructions, model, demo_url FROM assistants WHERE id = $1',
      [first.id],
    );
    expect(rows).toEqual([
      {
        id: first.id,
        company_id: null,
        provider: 'local',
        name: 'Acme Solar Assistant',
        instructions: first.instructions,
        model: 'local',
        demo_url: REQUEST.demoUrl,
      },
    ]);
  });
});

describe('createAssistantProvider', () => {
  it('is the local provider without OPENAI_API_KEY, OpenAI with it', async () => {
    const local = createAssistantProvider(loadConfig({ OPENAI_BASE_URL: standIn.baseUrl }).openai, db);
    expect(local).toBeInstanceOf(LocalAssistantProvider);
    expect((await local.createAssistant(REQUEST)).provider).toBe('local');
    expect(standIn.requests).toHaveLength(0);

    const remote = createAssistantProvider(
      loadConfig({ OPENAI_API_KEY: KEY, OPENAI_BASE_URL: standIn.baseUrl }).openai,
      db,
    );
    expect(remote).toBeInstanceOf(OpenAIAssistantProvider);
    expect((await remote.createAssistant(REQUEST)).provider).toBe('openai');
    expect(standIn.requests).toHaveLength(1);
  });
});
