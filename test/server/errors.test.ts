import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createCache, ErrorCode, LarderError } from '../../src/index.js';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { mapError } from '../../src/server/error-handler.js';
import { ServiceError, ServiceErrorCode } from '../../src/server/errors.js';
import { closeApps, getBySlug, openedApps, postMapping, sharedDatabase } from './helpers.js';

afterEach(closeApps);

/** A pino destination that keeps the parsed log lines. */
function logSink(): { lines: Array<Record<string, unknown>>; stream: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('error mapping', () => {
  it.each([
    ErrorCode.InvalidKey,
    ErrorCode.InvalidTenant,
    ErrorCode.InvalidNamespace,
    ErrorCode.InvalidTag,
    ErrorCode.InvalidTtl,
    ErrorCode.InvalidValue,
    ErrorCode.ValueTooLarge,
  ])('maps LarderError %s to 400 with its code and message', (code) => {
    expect(mapError(new LarderError(code, 'bad input'))).toEqual({
      status: 400,
      code,
      message: 'bad input',
      log: false,
    });
  });

  it('maps other Larder errors and unknown errors to a generic, logged 500', () => {
    for (const error of [
      new LarderError(ErrorCode.LoaderFailed, 'loader said: password=hunter2'),
      new Error('db password hunter2'),
      'a string',
      undefined,
    ]) {
      expect(mapError(error)).toEqual({
        status: 500,
        code: 'E_INTERNAL',
        message: 'Internal server error',
        log: true,
      });
    }
  });

  it('maps service errors to their catalogue status', () => {
    expect(mapError(new ServiceError(ServiceErrorCode.SlugTaken, 'taken'))).toMatchObject({ status: 409 });
    expect(mapError(new ServiceError(ServiceErrorCode.NotFound, 'no'))).toMatchObject({ status: 404 });
  });

  it('answers an unexpected error with 500, a generic message, and logs it', async () => {
    const { lines, stream } = logSink();
    const app = buildApp({
      config: loadConfig({}),
      database: sharedDatabase(),
      seed: false,
      logger: { level: 'error', stream },
    });
    openedApps.push(app);
    app.get('/boom', async () => {
      throw new Error('db password hunter2');
    });
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'E_INTERNAL', message: 'Internal server error' } });
    expect(res.body).not.toContain('hunter2');
    const logged = lines.find((l) => l.msg === 'request failed');
    expect(logged?.err).toMatchObject({ message: 'db password hunter2' });
  });

  it('turns a Larder input error raised by the cache into a 400, not a 500', async () => {
    const cache = createCache({ maxValueBytes: 500 });
    const app = buildApp({ config: loadConfig({}), database: sharedDatabase(), seed: false, cache });
    openedApps.push(app);
    const res = await postMapping(app, { companyName: 'Acme', assistantId: 'a1', notes: 'x'.repeat(1000) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(ErrorCode.ValueTooLarge);
    await cache.close();
  });

  it('answers 503 once the cache is closed (shutdown), not 500', async () => {
    const cache = createCache({});
    const app = buildApp({ config: loadConfig({}), database: sharedDatabase(), seed: false, cache });
    openedApps.push(app);
    await cache.close();
    const res = await getBySlug(app, 'acme');
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('E_UNAVAILABLE');
  });

  it('gives errors raised before routing the same shape', async () => {
    const app = buildApp({ config: loadConfig({}), database: sharedDatabase(), seed: false });
    openedApps.push(app);
    const tooLong = await app.inject({ method: 'GET', url: `/api/assistants/${'a'.repeat(600)}/company` });
    expect(tooLong.statusCode).toBeGreaterThanOrEqual(400);
    expect(tooLong.statusCode).toBeLessThan(500);
    expect(tooLong.json()).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    const badUrl = await app.inject({ method: 'GET', url: '/api/assistants/%E0%A4%A/company' });
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.json()).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
  });
});

describe('cache ownership', () => {
  it('closes the cache it created when the app closes', async () => {
    const app = buildApp({ config: loadConfig({}), database: sharedDatabase(), seed: false });
    await app.ready();
    const cache = app.cache;
    await app.close();
    await expect(cache.get('k')).rejects.toMatchObject({ code: ErrorCode.Closed });
  });

  it('leaves a cache it was given open', async () => {
    const cache = createCache({});
    const app = buildApp({ config: loadConfig({}), database: sharedDatabase(), seed: false, cache });
    await postMapping(app, { companyName: 'Acme', assistantId: 'a1' });
    await app.close();
    expect(await cache.namespace('company-assistants').get('assistant:a1')).toBe('acme');
    await cache.close();
  });
});
