import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SingleBar } from 'cli-progress';
import { type MapLike, migrateFromMap } from '../../adapters/migrate-from-map.js';
import type { Duration } from '../../index.js';
import { toMilliseconds } from '../../options/duration.js';
import { type CliContext, UsageError } from '../context.js';
import { withCache } from '../larder-cache.js';
import { type ScopeArgs, scopeOf, viewOf } from '../scope-args.js';

/** Options of {@link migrateCommand}. */
export type MigrateArgs = ScopeArgs & {
  /** A `.json` dump or a JavaScript module exporting a `Map`. */
  source: string | undefined;
  ttl: string | undefined;
  batchSize: number | undefined;
};

// Skipped entries listed in the summary; the rest are counted.
const SKIPS_SHOWN = 10;

/**
 * `larder migrate <file> --namespace <ns> [--tenant <id>] [--ttl 1h] [--batch 500]`: imports a JSON
 * dump (`{ "key": value }` or `[["key", value], ...]`) or a module whose default (or only `Map`)
 * export is a `Map`, through `migrateFromMap`, with a progress bar and a summary. Exit code 1 when
 * entries were skipped (each is listed with its reason).
 */
export async function migrateCommand(ctx: CliContext, args: MigrateArgs): Promise<number> {
  if (args.source === undefined)
    throw new UsageError('migrate needs a file: larder migrate <dump.json | module.js> --namespace <ns>');
  if (args.namespace === undefined) throw new UsageError('migrate needs --namespace (where the entries go)');
  const scope = scopeOf(ctx, args);
  if (args.ttl !== undefined) {
    try {
      toMilliseconds(args.ttl, '--ttl');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const entries = await loadSource(args.source);
  const startedAt = performance.now();
  const bar = ctx.interactive
    ? new SingleBar({
        format: 'migrating [{bar}] {percentage}% | {value}/{total} entries | {eta}s left',
        hideCursor: true,
      })
    : undefined;
  const report = await withCache(ctx, async (cache) => {
    bar?.start(entries.size, 0);
    try {
      return await migrateFromMap(entries, {
        target: viewOf(cache, args),
        ...(args.ttl === undefined ? {} : { ttl: args.ttl as Duration }),
        ...(args.batchSize === undefined ? {} : { batchSize: args.batchSize }),
        onProgress: ({ done }) => bar?.update(done),
      });
    } catch (error) {
      // Options Larder refuses (a bad --ttl or --batch) are the caller's to fix.
      throw new UsageError((error as Error).message);
    } finally {
      bar?.stop();
    }
  });
  const seconds = (performance.now() - startedAt) / 1000;
  if (ctx.json) {
    ctx.out(JSON.stringify({ scope: scope.path, ...report, seconds }));
  } else {
    ctx.out(
      `migrated ${report.written} of ${report.total} entries into ${scope.path} in ${seconds.toFixed(2)} s; skipped ${report.skipped.length}`,
    );
    for (const skip of report.skipped.slice(0, SKIPS_SHOWN))
      ctx.out(`  skipped ${JSON.stringify(skip.key)}: ${skip.reason}`);
    if (report.skipped.length > SKIPS_SHOWN)
      ctx.out(`  ... and ${report.skipped.length - SKIPS_SHOWN} more (use --json for all)`);
  }
  return report.skipped.length === 0 ? 0 : 1;
}

/** Reads the entries to migrate from a JSON dump or a module. */
async function loadSource(source: string): Promise<MapLike<unknown, unknown>> {
  const path = resolve(source);
  if (extname(path) === '.json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new UsageError(`${source}: ${(error as Error).message}`);
    }
    if (Array.isArray(parsed)) {
      if (!parsed.every((pair) => Array.isArray(pair) && pair.length === 2)) {
        throw new UsageError(`${source}: an array dump must hold [key, value] pairs`);
      }
      return new Map(parsed as Array<[unknown, unknown]>);
    }
    if (parsed !== null && typeof parsed === 'object') return new Map(Object.entries(parsed));
    throw new UsageError(`${source}: expected a JSON object or an array of [key, value] pairs`);
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`${source}: cannot be imported: ${(error as Error).message}`);
  }
  if (module.default instanceof Map) return module.default;
  const maps = Object.values(module).filter((v): v is Map<unknown, unknown> => v instanceof Map);
  if (maps.length === 1) return maps[0] as Map<unknown, unknown>;
  throw new UsageError(
    `${source}: expected a default export that is a Map, or exactly one exported Map (found ${maps.length})`,
  );
}
