import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('has defaults and runs memory-only when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      environment: 'development',
      redisMode: 'not-configured',
      redis: undefined,
    });
    expect(config.redisReason).toMatch(/not configured/i);
    expect(config.redisReason).toContain('REDIS_URL');
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '', HOST: ' ' })).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      redisMode: 'not-configured',
    });
  });

  it('reads PORT, HOST and LARDER_ENV', () => {
    expect(loadConfig({ PORT: '8080', HOST: '0.0.0.0', LARDER_ENV: 'staging' })).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      environment: 'staging',
    });
    expect(loadConfig({ PORT: '0' }).port).toBe(0);
  });

  it('reads REDIS_URL and redacts its password in what it exposes', () => {
    const config = loadConfig({ REDIS_URL: 'redis://user:s3cret@cache.internal:6380/2' });
    expect(config.redisMode).toBe('configured');
    expect(config.redis?.endpoint).toBe('redis://user:***@cache.internal:6380/2');
    expect(config.redisReason).toContain('redis://user:***@cache.internal:6380/2');
    expect(config.redis?.connection()).toEqual({ url: 'redis://user:s3cret@cache.internal:6380/2' });
    expect(JSON.stringify(config)).not.toContain('s3cret');
    expect(inspect(config, { depth: 10 })).not.toContain('s3cret');
  });

  it('adds REDIS_PASSWORD to a REDIS_URL without one', () => {
    const config = loadConfig({ REDIS_URL: 'redis://cache.internal:6379', REDIS_PASSWORD: 'p@ss' });
    expect(config.redis?.connection().url).toBe('redis://:p%40ss@cache.internal:6379');
    expect(config.redis?.endpoint).not.toContain('p%40ss');
  });

  it('reads REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB and REDIS_TLS', () => {
    const config = loadConfig({
      REDIS_HOST: 'cache.internal',
      REDIS_PORT: '6380',
      REDIS_PASSWORD: 'hunter2',
      REDIS_DB: '3',
      REDIS_TLS: 'true',
    });
    expect(config.redisMode).toBe('configured');
    expect(config.redis?.connection()).toEqual({
      host: 'cache.internal',
      port: 6380,
      password: 'hunter2',
      db: 3,
      tls: true,
    });
    expect(config.redis?.endpoint).toBe('rediss://:***@cache.internal:6380/3');
    expect(JSON.stringify(config)).not.toContain('hunter2');
    expect(config.redisReason).not.toContain('hunter2');
  });

  it('counts REDIS_PORT alone as configured, on localhost', () => {
    const config = loadConfig({ REDIS_PORT: '6390' });
    expect(config.redisMode).toBe('configured');
    expect(config.redis?.connection()).toMatchObject({ host: '127.0.0.1', port: 6390, db: 0, tls: false });
  });

  it.each(['false', '0', 'no', 'FALSE', 'off'])('REDIS_ENABLED=%s is the kill switch', (value) => {
    const config = loadConfig({ REDIS_ENABLED: value, REDIS_URL: 'redis://:pw@cache.internal:6379' });
    expect(config.redisMode).toBe('disabled');
    expect(config.redis).toBeUndefined();
    expect(config.redisReason).toContain(`REDIS_ENABLED=${value}`);
    expect(config.redisReason).not.toContain('pw');
  });

  it('REDIS_ENABLED=true without a target is still not configured', () => {
    expect(loadConfig({ REDIS_ENABLED: 'true' }).redisMode).toBe('not-configured');
    expect(loadConfig({ REDIS_ENABLED: '1', REDIS_HOST: 'h' }).redisMode).toBe('configured');
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT', '"abc"'],
    [{ PORT: '70000' }, 'PORT', '"70000"'],
    [{ PORT: '-1' }, 'PORT', '"-1"'],
    [{ PORT: '80.5' }, 'PORT', '"80.5"'],
    [{ PORT: '1e3' }, 'PORT', '"1e3"'],
    [{ REDIS_PORT: '0' }, 'REDIS_PORT', '"0"'],
    [{ REDIS_PORT: 'six' }, 'REDIS_PORT', '"six"'],
    [{ REDIS_DB: '-1' }, 'REDIS_DB', '"-1"'],
    [{ REDIS_DB: 'one' }, 'REDIS_DB', '"one"'],
    [{ REDIS_TLS: 'maybe' }, 'REDIS_TLS', '"maybe"'],
    [{ REDIS_ENABLED: 'flase' }, 'REDIS_ENABLED', '"flase"'],
    [{ LARDER_ENV: 'prod env' }, 'LARDER_ENV', '"prod env"'],
    [{ REDIS_URL: 'http://cache:6379' }, 'REDIS_URL', '"http://cache:6379"'],
  ] as Array<[NodeJS.ProcessEnv, string, string]>)(
    'rejects %o naming the variable and the value',
    (env, variable, shown) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(variable);
      expect(error.message).toContain(shown);
    },
  );

  it('redacts the password of a rejected REDIS_URL', () => {
    const error = configError({ REDIS_URL: 'http://user:s3cret@cache:6379' });
    expect(error.message).toContain('REDIS_URL');
    expect(error.message).not.toContain('s3cret');
  });

  it('rejects REDIS_URL together with REDIS_HOST-style fields', () => {
    const error = configError({ REDIS_URL: 'redis://a:6379', REDIS_HOST: 'b' });
    expect(error.message).toMatch(/REDIS_URL.*REDIS_HOST/);
  });
});

describe('loadConfig: database', () => {
  it('uses PGlite in ./data/pglite and seeds demo data when nothing is set', () => {
    const config = loadConfig({});
    expect(config.dataDir).toBe(resolve('data'));
    expect(config.database).toEqual({ engine: 'pglite', dataDir: join(resolve('data'), 'pglite') });
    expect(config.seedDemoData).toBe(true);
  });

  it('reads DATA_DIR, relative to the working directory', () => {
    expect(loadConfig({ DATA_DIR: 'var/larder' }).database).toEqual({
      engine: 'pglite',
      dataDir: join(resolve('var/larder'), 'pglite'),
    });
    expect(loadConfig({ DATA_DIR: '/srv/larder' }).dataDir).toBe('/srv/larder');
  });

  it('uses Postgres at DATABASE_URL, does not seed it by default, and redacts its password', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://app:s3cret@db.internal:5433/leads' });
    expect(config.database).toMatchObject({
      engine: 'postgres',
      endpoint: 'postgresql://app:***@db.internal:5433/leads',
    });
    expect(config.database.engine === 'postgres' && config.database.connectionString()).toBe(
      'postgresql://app:s3cret@db.internal:5433/leads',
    );
    expect(config.seedDemoData).toBe(false);
    expect(JSON.stringify(config)).not.toContain('s3cret');
    expect(inspect(config, { depth: 10 })).not.toContain('s3cret');
  });

  it('reads SEED_DEMO_DATA either way', () => {
    expect(loadConfig({ SEED_DEMO_DATA: 'off' }).seedDemoData).toBe(false);
    expect(loadConfig({ DATABASE_URL: 'postgres://db/leads', SEED_DEMO_DATA: 'yes' }).seedDemoData).toBe(
      true,
    );
  });

  it.each([
    [{ DATABASE_URL: 'mysql://db/leads' }, 'DATABASE_URL', '"mysql://db/leads"'],
    [{ DATABASE_URL: 'postgres://' }, 'DATABASE_URL', '"postgres://"'],
    [{ SEED_DEMO_DATA: 'sometimes' }, 'SEED_DEMO_DATA', '"sometimes"'],
  ] as Array<[NodeJS.ProcessEnv, string, string]>)(
    'rejects %o naming the variable and the value',
    (env, variable, shown) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(variable);
      expect(error.message).toContain(shown);
    },
  );

  it('redacts the password of a rejected DATABASE_URL', () => {
    const error = configError({ DATABASE_URL: 'mysql://app:s3cret@db/leads' });
    expect(error.message).not.toContain('s3cret');
  });
});

describe('loadConfig: prototypes (OpenAI and demo URLs)', () => {
  it('creates assistants locally without OPENAI_API_KEY, and builds demo URLs from HOST/PORT', () => {
    const config = loadConfig({ OPENAI_MODEL: 'gpt-4o', OPENAI_BASE_URL: 'http://localhost:9/v1' });
    expect(config.openai).toBeUndefined();
    expect(config.demoBaseUrl).toBe('http://127.0.0.1:3000/demo');
    expect(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }).demoBaseUrl).toBe('http://localhost:8080/demo');
    expect(loadConfig({ HOST: '::1', PORT: '8080' }).demoBaseUrl).toBe('http://[::1]:8080/demo');
    expect(loadConfig({ PORT: '0' }).demoBaseUrl).toBe('/demo');
  });

  it('reads OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL, OPENAI_TIMEOUT_MS and DEMO_BASE_URL', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-proj-s3cretKey',
      OPENAI_BASE_URL: 'https://gateway.example.com/openai/v1/',
      OPENAI_MODEL: 'gpt-4.1-mini',
      OPENAI_TIMEOUT_MS: '5000',
      DEMO_BASE_URL: 'https://demos.example.com/d//',
    });
    expect(config.openai).toMatchObject({
      baseUrl: 'https://gateway.example.com/openai/v1',
      model: 'gpt-4.1-mini',
      timeoutMs: 5000,
    });
    expect(config.openai?.apiKey()).toBe('sk-proj-s3cretKey');
    expect(config.demoBaseUrl).toBe('https://demos.example.com/d');
    expect(loadConfig({ OPENAI_API_KEY: 'k' }).openai).toMatchObject({
      baseUrl: 'https://api.openai.com/v1',
      model: 'gpt-4o-mini',
      timeoutMs: 20_000,
    });
  });

  it('never prints the OpenAI key when the config is logged or serialized', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-proj-s3cretKey' });
    expect(JSON.stringify(config)).not.toContain('s3cretKey');
    expect(inspect(config, { depth: 10 })).not.toContain('s3cretKey');
  });

  it.each([
    [{ OPENAI_BASE_URL: 'api.openai.com/v1' }, 'OPENAI_BASE_URL', '"api.openai.com/v1"'],
    [{ OPENAI_BASE_URL: 'ftp://api.example.com' }, 'OPENAI_BASE_URL', '"ftp://api.example.com"'],
    [{ OPENAI_MODEL: 'gpt 4o' }, 'OPENAI_MODEL', '"gpt 4o"'],
    [{ OPENAI_MODEL: 'm'.repeat(101) }, 'OPENAI_MODEL', `"${'m'.repeat(101)}"`],
    [{ OPENAI_TIMEOUT_MS: '50' }, 'OPENAI_TIMEOUT_MS', '"50"'],
    [{ OPENAI_TIMEOUT_MS: 'soon' }, 'OPENAI_TIMEOUT_MS', '"soon"'],
    [{ DEMO_BASE_URL: '/demo' }, 'DEMO_BASE_URL', '"/demo"'],
    [{ DEMO_BASE_URL: 'javascript:alert(1)' }, 'DEMO_BASE_URL', '"javascript:alert(1)"'],
  ] as Array<[NodeJS.ProcessEnv, string, string]>)(
    'rejects %o naming the variable and the value',
    (env, variable, shown) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(variable);
      expect(error.message).toContain(shown);
    },
  );

  it('rejects an OPENAI_API_KEY with spaces without showing it', () => {
    const error = configError({ OPENAI_API_KEY: 'sk-abc s3cretKey' });
    expect(error.variable).toBe('OPENAI_API_KEY');
    expect(error.message).not.toContain('s3cretKey');
  });

  it('redacts credentials of a rejected OPENAI_BASE_URL or DEMO_BASE_URL', () => {
    expect(configError({ OPENAI_BASE_URL: 'ftp://u:s3cret@api.example.com' }).message).not.toContain(
      's3cret',
    );
    expect(configError({ DEMO_BASE_URL: 'ftp://u:s3cret@demo.example.com' }).message).not.toContain('s3cret');
  });
});

describe('loadConfig: rate limits', () => {
  it('limits 600 requests a minute per IP and 3000 per tenant by default', () => {
    expect(loadConfig({}).rateLimit).toEqual({ enabled: true, perIp: 600, perTenant: 3000 });
  });

  it('reads RATE_LIMIT_ENABLED, RATE_LIMIT_PER_IP and RATE_LIMIT_PER_TENANT', () => {
    expect(
      loadConfig({ RATE_LIMIT_ENABLED: 'off', RATE_LIMIT_PER_IP: '5', RATE_LIMIT_PER_TENANT: '1000000' })
        .rateLimit,
    ).toEqual({ enabled: false, perIp: 5, perTenant: 1_000_000 });
    expect(loadConfig({ RATE_LIMIT_ENABLED: 'yes', RATE_LIMIT_PER_IP: '1' }).rateLimit).toEqual({
      enabled: true,
      perIp: 1,
      perTenant: 3000,
    });
  });

  it.each([
    [{ RATE_LIMIT_ENABLED: 'maybe' }, 'RATE_LIMIT_ENABLED', '"maybe"'],
    [{ RATE_LIMIT_PER_IP: '0' }, 'RATE_LIMIT_PER_IP', '"0"'],
    [{ RATE_LIMIT_PER_IP: '-5' }, 'RATE_LIMIT_PER_IP', '"-5"'],
    [{ RATE_LIMIT_PER_IP: '10/min' }, 'RATE_LIMIT_PER_IP', '"10/min"'],
    [{ RATE_LIMIT_PER_IP: '2.5' }, 'RATE_LIMIT_PER_IP', '"2.5"'],
    [{ RATE_LIMIT_PER_TENANT: '1000001' }, 'RATE_LIMIT_PER_TENANT', '"1000001"'],
    [{ RATE_LIMIT_PER_TENANT: 'lots' }, 'RATE_LIMIT_PER_TENANT', '"lots"'],
  ] as Array<[NodeJS.ProcessEnv, string, string]>)(
    'rejects %o naming the variable and the value',
    (env, variable, shown) => {
      const error = configError(env);
      expect(error.variable).toBe(variable);
      expect(error.message).toContain(variable);
      expect(error.message).toContain(shown);
    },
  );
});
