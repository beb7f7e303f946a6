import { parseArgs } from 'node:util';
import { redactUrl } from '../index.js';
import { doctorCommand } from './commands/doctor.js';
import { healthCommand } from './commands/health.js';
import { invalidateCommand } from './commands/invalidate.js';
import { keysCommand } from './commands/keys.js';
import { migrateCommand } from './commands/migrate.js';
import { statsCommand } from './commands/stats.js';
import { type CliContext, type CliOutput, resolveRedisUrl, UsageError } from './context.js';

/** Text of `larder help`. */
export const HELP = `larder <command> [options]

Commands:
  stats                      Redis keys, memory, hit/miss and evictions; the service's cache stats
  health                     PING Redis and ask the service; exit 1 when either is unhealthy
  keys --namespace <ns>      one page of a scope's keys with TTLs, by SCAN (never KEYS)
       [--tenant <id>] [--limit 100] [--cursor <c>]
  invalidate --namespace <ns> [--tenant <id>] (--tag <tag>... | --all)
                             deleteByTag or clear through Larder (version bumps + bus)
  migrate <file.json | module.js> --namespace <ns> [--tenant <id>] [--ttl 1h] [--batch 500]
                             import a JSON dump or a module exporting a Map
  doctor                     connectivity, latency, version, maxmemory/eviction, persistence
  help                       this text

Options (every command):
  --url <redis://...>        Redis; else REDIS_URL, REDIS_HOST/REDIS_PORT, the service's private
                             redis-server (<DATA_DIR>/redis), or redis://127.0.0.1:6379
  --env <name>               Larder environment segment; else LARDER_ENV (the service uses
                             'development' when unset)
  --prefix <prefix>          key prefix (default larder)
  --service <url>            the running service, for stats/health (default http://HOST:PORT,
                             127.0.0.1:3000)
  --json                     machine-readable output
`;

const OPTIONS = {
  url: { type: 'string' },
  env: { type: 'string' },
  prefix: { type: 'string' },
  service: { type: 'string' },
  json: { type: 'boolean' },
  namespace: { type: 'string', short: 'n' },
  tenant: { type: 'string', short: 't' },
  tag: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  ttl: { type: 'string' },
  batch: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Runs the `larder` CLI on `argv` (without `node` and the script) and resolves its exit code:
 * 0 done, 1 failed (Redis unreachable, unhealthy, entries skipped), 2 usage error. Never throws.
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), process.env, output);
 */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: CliOutput,
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const [command, ...rest] = positionals;
    if (command === undefined || command === 'help' || values.help === true) {
      io.out(HELP);
      return command === undefined && values.help !== true ? 2 : 0;
    }
    const known = ['stats', 'health', 'keys', 'invalidate', 'migrate', 'doctor'];
    if (!known.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    if (command !== 'migrate' && rest.length > 0)
      throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    if (command === 'migrate' && rest.length > 1)
      throw new UsageError(`migrate takes one file, got ${rest.length}`);

    const ctx = context(values, env, io);
    const scope = { namespace: values.namespace, tenant: values.tenant };
    switch (command) {
      case 'stats':
        return await statsCommand(ctx);
      case 'health':
        return await healthCommand(ctx);
      case 'doctor':
        return await doctorCommand(ctx);
      case 'keys':
        return await keysCommand(ctx, {
          ...scope,
          limit: positive('--limit', values.limit) ?? 100,
          cursor: values.cursor ?? '0',
        });
      case 'invalidate':
        return await invalidateCommand(ctx, { ...scope, tags: values.tag ?? [], all: values.all === true });
      default:
        return await migrateCommand(ctx, {
          ...scope,
          source: rest[0],
          ttl: values.ttl,
          batchSize: positive('--batch', values.batch),
        });
    }
  } catch (error) {
    const usage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    io.err(`larder: ${(error as Error).message}${usage ? ' (see larder help)' : ''}`);
    return usage ? 2 : 1;
  }
}

type Values = { url?: string; env?: string; prefix?: string; service?: string; json?: boolean };

function context(values: Values, env: NodeJS.ProcessEnv, io: CliOutput): CliContext {
  const redis = resolveRedisUrl(values.url, env);
  const host = env.HOST?.trim() || '127.0.0.1';
  const port = env.PORT?.trim() || '3000';
  const serviceUrl = values.service ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  if (!URL.canParse(serviceUrl))
    throw new UsageError(`--service: expected a URL, got ${JSON.stringify(serviceUrl)}`);
  return {
    ...io,
    redisUrl: redis.url,
    redisEndpoint: `${redactUrl(redis.url)}${redis.source === '--url' ? '' : ` (from ${redis.source})`}`,
    environment: values.env ?? (env.LARDER_ENV?.trim() || 'development'),
    prefix: values.prefix ?? 'larder',
    serviceUrl,
    json: values.json === true,
  };
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new UsageError(`${name}: expected a whole number of 1 or more, got ${JSON.stringify(value)}`);
  }
  return parsed;
}
