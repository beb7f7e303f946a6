import { type CliContext, fetchService, withRedis } from '../context.js';

type ServiceHealth = { status?: string; reason?: string };

/**
 * `larder health`: PING latency to Redis and, when the service answers at `--service`, its
 * `/api/health`. Exit code 1 when Redis does not answer or the service reports `degraded`.
 */
export async function healthCommand(ctx: CliContext): Promise<number> {
  let redis: { reachable: boolean; pingMs?: number; error?: string };
  try {
    redis = await withRedis(ctx, async (client) => {
      const startedAt = performance.now();
      await client.ping();
      return { reachable: true, pingMs: Math.round((performance.now() - startedAt) * 1000) / 1000 };
    });
  } catch (error) {
    redis = { reachable: false, error: (error as Error).message };
  }
  const service = (await fetchService(ctx, '/api/health')) as ServiceHealth | undefined;
  const healthy = redis.reachable && (service === undefined || service.status === 'ok');
  if (ctx.json) {
    ctx.out(
      JSON.stringify({
        ok: healthy,
        redis: { endpoint: ctx.redisEndpoint, ...redis },
        service: service ?? null,
      }),
    );
  } else {
    ctx.out(
      redis.reachable
        ? `redis ${ctx.redisEndpoint}: ok, PING ${redis.pingMs} ms`
        : `redis ${ctx.redisEndpoint}: unreachable: ${redis.error}`,
    );
    ctx.out(
      service?.status === undefined
        ? `service ${ctx.serviceUrl}: not answering`
        : `service ${ctx.serviceUrl}: ${service.status}${service.reason === undefined ? '' : ` (${service.reason})`}`,
    );
  }
  return healthy ? 0 : 1;
}
