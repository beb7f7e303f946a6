import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { createCache } from '../../src/index.js';
import { waitForRedis } from '../support/cache.js';
import { freePort } from '../support/redis-server.js';
import { useRedisSuite } from '../support/suite.js';

const suite = useRedisSuite();
const ENV = 'clitest';
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Runs the CLI in-process with `--url` of the suite's server; collects its output. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string; lines: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(
    ['--url', suite.server.url, '--env', ENV, ...argv],
    {},
    {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      interactive: false,
    },
  );
  return { code, out: out.join('\n'), err: err.join('\n'), lines: out };
}

/** A cache on the same key space as the CLI (what a running service holds), connected. */
async function serviceCache() {
  const cache = suite.track(createCache({ redis: { url: suite.server.url }, environment: ENV }));
  await waitForRedis(cache);
  return cache;
}

describe('larder keys', () => {
  it('lists one scope by SCAN, decodes escaped keys, and pages with a cursor until complete', async () => {
    const cache = await serviceCache();
    const leads = cache.namespace('leads');
    const mine = ['phone:+15551234567', 'weird key*[x]', 'a:b@c'];
    await leads.forTenant('org-1').setMany(mine.map((key) => ({ key, value: 1 })));
    await leads.forTenant('org-2').set('phone:+15550000000', 2);
    await cache.namespace('other').set('x', 3);

    const page = await cli('keys', '--namespace', 'leads', '--tenant', 'org-1');
    expect(page.code).toBe(0);
    const listed = page.lines.slice(0, -1).map((l) => l.split('\t'));
    expect(listed.map(([, key]) => key).sort()).toEqual([...mine].sort());
    expect(listed.every(([scope, , ttl]) => scope === 'leads/@org-1' && /^ttl \d+s$/.test(ttl ?? ''))).toBe(
      true,
    );
    expect(page.lines.at(-1)).toBe('3 key(s); scan complete');

    // Every namespace key, one small page at a time, following the printed cursor.
    const seen: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 50; i++) {
      const res = await cli('keys', '--namespace', 'leads', '--limit', '1', '--cursor', cursor, '--json');
      const body = JSON.parse(res.out) as { keys: Array<{ key: string }>; nextCursor: string | null };
      seen.push(...body.keys.map((k) => k.key));
      if (body.nextCursor === null) break;
      cursor = body.nextCursor;
    }
    expect(seen.sort()).toEqual([...mine, 'phone:+15550000000'].sort());
  });

  it('refuses to list without a namespace, and bad options, with exit code 2', async () => {
    expect((await cli('keys')).code).toBe(2);
    expect((await cli('keys', '--namespace', 'leads', '--limit', '0')).err).toMatch(
      /--limit: expected a whole number/,
    );
    expect((await cli('keys', '--tenant', 'org-1')).err).toMatch(/--tenant needs --namespace/);
    expect((await cli('keys', '--namespace', 'leads', '--cursor', 'abc')).code).toBe(2);
    expect((await cli('nonsense')).err).toMatch(/unknown command "nonsense"/);
  });
});

describe('larder invalidate', () => {
  it('drops tagged entries from Redis and from a running instance’s memory tier (bus)', async () => {
    const cache = await serviceCache();
    const org = cache.namespace('kpis').forTenant('org-1');
    await org.set('revenue', 100, { tags: ['kpis'] });
    await org.set('untagged', 1);
    expect(await org.get('revenue')).toBe(100); // memory copy in the "running service"

    const res = await cli('invalidate', '--namespace', 'kpis', '--tenant', 'org-1', '--tag', 'kpis');
    expect(res.code).toBe(0);
    expect(res.out).toBe('invalidated tag(s) "kpis" in kpis/@org-1');
    await expect.poll(() => org.get('revenue'), { timeout: 3000 }).toBeUndefined();
    expect(await org.get('untagged')).toBe(1);

    expect((await cli('invalidate', '--namespace', 'kpis', '--tenant', 'org-1', '--all')).code).toBe(0);
    await expect.poll(() => org.get('untagged'), { timeout: 3000 }).toBeUndefined();
  });

  it('needs --tag or --all, and fails with exit 1 when Redis is unreachable', async () => {
    expect((await cli('invalidate', '--namespace', 'kpis')).code).toBe(2);
    const port = await freePort(); // nothing listens there
    const out: string[] = [];
    const code = await runCli(
      ['--url', `redis://127.0.0.1:${port}`, 'invalidate', '--namespace', 'kpis', '--all'],
      {},
      { out: () => {}, err: (l) => out.push(l), interactive: false },
    );
    expect(code).toBe(1);
    expect(out.join('\n')).toMatch(/cannot use Redis at redis:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('larder migrate', () => {
  it('imports a JSON dump and a module exporting a Map; lists skipped entries and exits 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'larder-cli-'));
    dirs.push(dir);
    const dump = join(dir, 'dump.json');
    await writeFile(dump, JSON.stringify({ 'user:1': { name: 'Ada' }, 'user:2': { name: 'Grace' } }));
    const res = await cli('migrate', dump, '--namespace', 'users', '--ttl', '1h');
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/^migrated 2 of 2 entries into users in [\d.]+ s; skipped 0$/);
    const users = (await serviceCache()).namespace('users');
    expect(await users.get('user:2')).toEqual({ name: 'Grace' });

    const mod = join(dir, 'legacy.mjs');
    await writeFile(mod, `export const sessions = new Map([['s1', 1], ['', 2], ['s3', 3]]);\n`);
    const partial = await cli('migrate', mod, '--namespace', 'sessions', '--tenant', 'org-1');
    expect(partial.code).toBe(1);
    expect(partial.lines[0]).toMatch(/^migrated 2 of 3 entries into sessions\/@org-1/);
    expect(partial.lines[1]).toMatch(/^ {2}skipped "": /);
    expect(await (await serviceCache()).namespace('sessions').forTenant('org-1').get('s3')).toBe(3);
  });

  it('refuses a bad file, a bad dump shape and a bad TTL with exit code 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'larder-cli-'));
    dirs.push(dir);
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '[1, 2]');
    expect((await cli('migrate', bad, '--namespace', 'x')).err).toMatch(/\[key, value\] pairs/);
    await writeFile(bad, '{ not json');
    expect((await cli('migrate', bad, '--namespace', 'x')).code).toBe(2);
    await writeFile(bad, '{}');
    expect((await cli('migrate', bad, '--namespace', 'x', '--ttl', 'soon')).code).toBe(2);
    expect((await cli('migrate', '--namespace', 'x')).err).toMatch(/migrate needs a file/);
  });
});

describe('larder doctor, stats, health', () => {
  it('doctor reports connectivity, latency and version, and warns on no maxmemory and noeviction', async () => {
    const res = await cli('doctor', '--json');
    expect(res.code).toBe(0);
    const { checks } = JSON.parse(res.out) as {
      checks: Array<{ name: string; level: string; detail: string }>;
    };
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName.connect?.level).toBe('ok');
    expect(byName.latency?.detail).toMatch(/PING p50 [\d.]+ ms/);
    expect(byName.version?.level).toBe('ok');
    expect(byName.maxmemory?.level).toBe('warn');
    expect(byName.eviction).toMatchObject({ level: 'warn', detail: expect.stringMatching(/noeviction/) });

    await suite.server.command('CONFIG', 'SET', 'maxmemory', '64mb');
    await suite.server.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    const tuned = JSON.parse((await cli('doctor', '--json')).out) as {
      checks: Array<{ name: string; level: string }>;
    };
    expect(tuned.checks.filter((c) => c.level === 'warn')).toEqual([]);
    await suite.server.command('CONFIG', 'SET', 'maxmemory', '0');
    await suite.server.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  });

  it('doctor and health fail with exit 1 when nothing listens; stats reads Redis without a service', async () => {
    const port = await freePort();
    const dead = { out: [] as string[] };
    const io = { out: (l: string) => dead.out.push(l), err: () => {}, interactive: false };
    expect(await runCli(['--url', `redis://127.0.0.1:${port}`, 'doctor'], {}, io)).toBe(1);
    expect(dead.out.join('\n')).toMatch(/FAIL +connect +cannot reach Redis/);
    const service = `http://127.0.0.1:${await freePort()}`;
    expect(await runCli(['--url', `redis://127.0.0.1:${port}`, '--service', service, 'health'], {}, io)).toBe(
      1,
    );

    const stats = await cli('stats', '--service', service, '--json');
    expect(stats.code).toBe(0);
    const body = JSON.parse(stats.out) as { redis: { keys: number }; service: unknown };
    expect(body.redis.keys).toBeGreaterThanOrEqual(0);
    expect(body.service).toBeNull();
    expect((await cli('health', '--service', service)).code).toBe(0);
  });

  it('runs as a command (node src/cli/main.ts) and never prints the Redis password', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'help']);
    expect(stdout).toMatch(/^larder <command>/);
    const port = await freePort();
    type Outcome = { code?: number; stdout: string; stderr: string };
    const failed: Outcome = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'health', '--service', `http://127.0.0.1:${port}`],
      { env: { ...process.env, REDIS_URL: `redis://:hunter22@127.0.0.1:${port}` } },
    ).catch((error: Outcome) => error);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/unreachable/);
    expect(failed.stdout + failed.stderr).not.toContain('hunter22');
  });
});
