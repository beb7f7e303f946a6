import { type CliContext, UsageError } from '../context.js';
import { withCache } from '../larder-cache.js';
import { type ScopeArgs, scopeOf, viewOf } from '../scope-args.js';

/** Options of {@link invalidateCommand}. */
export type InvalidateArgs = ScopeArgs & { tags: string[]; all: boolean };

/**
 * `larder invalidate --namespace <ns> [--tenant <id>] (--tag <tag>... | --all)`: `deleteByTag` or
 * `clear` through Larder itself — O(1) version bumps, announced on the bus so running services
 * drop their memory copies — never a KEYS/DEL sweep.
 */
export async function invalidateCommand(ctx: CliContext, args: InvalidateArgs): Promise<number> {
  if (args.namespace === undefined) throw new UsageError('invalidate needs --namespace');
  if (args.tags.length === 0 && !args.all) {
    throw new UsageError('invalidate needs --tag <tag> (repeatable) or --all to clear the whole scope');
  }
  if (args.tags.length > 0 && args.all) throw new UsageError('give --tag or --all, not both');
  const scope = scopeOf(ctx, args); // validates names before connecting
  await withCache(ctx, async (cache) => {
    const view = viewOf(cache, args);
    try {
      if (args.all) await view.clear();
      else await view.deleteByTag(args.tags);
    } catch (error) {
      throw new UsageError((error as Error).message); // a bad tag: Larder names it
    }
  });
  const what = args.all ? 'every entry' : `tag(s) ${args.tags.map((t) => JSON.stringify(t)).join(', ')}`;
  if (ctx.json) ctx.out(JSON.stringify({ invalidated: args.all ? 'all' : args.tags, scope: scope.path }));
  else ctx.out(`invalidated ${what} in ${scope.path}`);
  return 0;
}
