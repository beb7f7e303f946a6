import { type CliContext, parseInfo, withRedis } from '../context.js';

/** One finding of {@link doctorCommand}. `fail` makes the exit code 1; `warn` does not. */
export type Check = { name: string; level: 'ok' | 'warn' | 'fail' | 'info'; detail: string };

const PINGS = 20;
// Larder needs Redis 6.2 or later (GETEX-era commands, SET ... PXAT-safe TTL handling in scripts).
const MIN_VERSION = [6, 2];
const SLOW_PING_MS = 5;

/**
 * `larder doctor`: connectivity, round-trip latency, server version, memory limit and eviction
 * policy (warns on no `maxmemory` or `noeviction`), persistence, and cluster mode. Reads INFO only,
 * so it works on managed Redis where CONFIG is disabled.
 */
export async function doctorCommand(ctx: CliContext): Promise<number> {
  const checks: Check[] = [];
  try {
    await withRedis(ctx, async (client) => {
      checks.push({ name: 'connect', level: 'ok', detail: `reached ${ctx.redisEndpoint}` });
      const times: number[] = [];
      for (let i = 0; i < PINGS; i++) {
        const startedAt = performance.now();
        await client.ping();
        times.push(performance.now() - startedAt);
      }
      times.sort((a, b) => a - b);
      const p50 = times[Math.floor(PINGS / 2)] as number;
      const max = times.at(-1) as number;
      checks.push({
        name: 'latency',
        level: p50 > SLOW_PING_MS ? 'warn' : 'ok',
        detail: `PING p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms over ${PINGS}${p50 > SLOW_PING_MS ? ` (over ${SLOW_PING_MS} ms: is Redis far away or overloaded?)` : ''}`,
      });
      const info = parseInfo(await client.info());
      checks.push(versionCheck(info.redis_version ?? 'unknown'));
      checks.push(...memoryChecks(info));
      checks.push(persistenceCheck(info));
      checks.push({
        name: 'cluster',
        level: 'info',
        detail:
          info.cluster_enabled === '1'
            ? 'cluster mode: use the ioredis Cluster driver; atomic setMany across slots is refused'
            : 'standalone',
      });
    });
  } catch (error) {
    checks.push({ name: 'connect', level: 'fail', detail: (error as Error).message });
  }
  const failed = checks.some((c) => c.level === 'fail');
  if (ctx.json) ctx.out(JSON.stringify({ ok: !failed, checks }));
  else
    for (const c of checks) ctx.out(`${c.level.toUpperCase().padEnd(4)}  ${c.name.padEnd(12)} ${c.detail}`);
  return failed ? 1 : 0;
}

function versionCheck(version: string): Check {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const supported =
    major > (MIN_VERSION[0] as number) || (major === MIN_VERSION[0] && minor >= (MIN_VERSION[1] as number));
  return {
    name: 'version',
    level: supported ? 'ok' : 'fail',
    detail: supported
      ? `Redis ${version}`
      : `Redis ${version}: Larder needs ${MIN_VERSION.join('.')} or later`,
  };
}

function memoryChecks(info: Record<string, string>): Check[] {
  const maxmemory = Number(info.maxmemory ?? '0');
  const policy = info.maxmemory_policy ?? 'unknown';
  const used = info.used_memory_human ?? '?';
  return [
    {
      name: 'maxmemory',
      level: maxmemory === 0 ? 'warn' : 'ok',
      detail:
        maxmemory === 0
          ? `no maxmemory set (using ${used}): Redis grows until the machine runs out; set maxmemory for a cache`
          : `${info.maxmemory_human ?? maxmemory} (using ${used})`,
    },
    {
      name: 'eviction',
      level: policy === 'noeviction' ? 'warn' : 'ok',
      detail:
        policy === 'noeviction'
          ? 'maxmemory-policy noeviction: writes fail once memory is full (Larder falls back, but the cache stops filling); use allkeys-lru for a cache-only Redis, volatile-lru when it also holds job queues'
          : `maxmemory-policy ${policy}`,
    },
  ];
}

function persistenceCheck(info: Record<string, string>): Check {
  const aof = info.aof_enabled === '1';
  const lastSave = info.rdb_last_bgsave_status;
  if (lastSave !== undefined && lastSave !== 'ok') {
    return {
      name: 'persistence',
      level: 'warn',
      detail: `last RDB save failed (${lastSave}): check disk space and permissions`,
    };
  }
  const changes = info.rdb_changes_since_last_save ?? '?';
  return {
    name: 'persistence',
    level: 'info',
    detail: `${aof ? 'AOF on' : 'AOF off'}, RDB last save ${lastSave ?? 'n/a'} (${changes} changes since); a pure cache needs neither, job queues want AOF`,
  };
}
