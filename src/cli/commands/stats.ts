import { type CliContext, fetchService, parseInfo, withRedis } from '../context.js';

type ServiceStats = {
  totals?: { hits?: { memory?: number; redis?: number }; misses?: number; fallbacks?: number };
  redis?: { circuit?: string; switchedOff?: boolean };
};

/**
 * `larder stats`: Redis-side numbers (keys, memory, keyspace hits/misses, evictions, expirations)
 * and, when the service answers at `--service`, its own `/api/cache/stats` totals.
 */
export async function statsCommand(ctx: CliContext): Promise<number> {
  const redis = await withRedis(ctx, async (client) => {
    const info = parseInfo(await client.info());
    const hits = Number(info.keyspace_hits ?? 0);
    const misses = Number(info.keyspace_misses ?? 0);
    return {
      endpoint: ctx.redisEndpoint,
      keys: await client.dbSize(),
      usedMemory: info.used_memory_human,
      keyspaceHits: hits,
      keyspaceMisses: misses,
      hitRate: hits + misses === 0 ? null : hits / (hits + misses),
      evictedKeys: Number(info.evicted_keys ?? 0),
      expiredKeys: Number(info.expired_keys ?? 0),
      connectedClients: Number(info.connected_clients ?? 0),
    };
  });
  const service = (await fetchService(ctx, '/api/cache/stats')) as ServiceStats | undefined;
  if (ctx.json) {
    ctx.out(JSON.stringify({ redis, service: service ?? null }));
    return 0;
  }
  const rate = redis.hitRate === null ? 'n/a' : `${(redis.hitRate * 100).toFixed(1)}%`;
  ctx.out(
    `redis ${redis.endpoint}: ${redis.keys} keys, ${redis.usedMemory} used, ${redis.connectedClients} clients`,
  );
  ctx.out(
    `  keyspace hits ${redis.keyspaceHits}, misses ${redis.keyspaceMisses} (hit rate ${rate}); evicted ${redis.evictedKeys}, expired ${redis.expiredKeys}`,
  );
  if (service?.totals === undefined) {
    ctx.out(`service ${ctx.serviceUrl}: not answering (start it, or pass --service <url>)`);
    return 0;
  }
  const t = service.totals;
  const hits = (t.hits?.memory ?? 0) + (t.hits?.redis ?? 0);
  const total = hits + (t.misses ?? 0);
  ctx.out(
    `service ${ctx.serviceUrl}: hits ${hits} (memory ${t.hits?.memory ?? 0}, redis ${t.hits?.redis ?? 0}), misses ${t.misses ?? 0}, hit rate ${total === 0 ? 'n/a' : `${((hits / total) * 100).toFixed(1)}%`}, fallbacks ${t.fallbacks ?? 0}, circuit ${service.redis?.circuit ?? '?'}${service.redis?.switchedOff === true ? ' (Redis switched off)' : ''}`,
  );
  return 0;
}
