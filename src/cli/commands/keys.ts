import { type CliContext, UsageError, withRedis } from '../context.js';
import { parseEntryKey, rootScope, type ScopeArgs, scopeOf } from '../scope-args.js';

/** Options of {@link keysCommand}. */
export type KeysArgs = ScopeArgs & {
  /** Keys to print at most. */
  limit: number;
  /** SCAN cursor to continue from (printed by the previous page). */
  cursor: string;
};

// Keys SCAN examines per call: large enough to page quickly, small enough not to block Redis.
const SCAN_COUNT = 500;

/**
 * `larder keys --namespace <ns> [--tenant <id>] [--limit 100] [--cursor 0]`: one page of the entry
 * keys of a scope (and its sub-scopes), found with SCAN (never KEYS), with their TTL. Prints the
 * cursor of the next page, or that the scan is complete.
 */
export async function keysCommand(ctx: CliContext, args: KeysArgs): Promise<number> {
  const scope = scopeOf(ctx, args);
  if (args.namespace === undefined) {
    throw new UsageError('keys needs --namespace (listing every namespace at once is what KEYS * does)');
  }
  if (!/^\d+$/.test(args.cursor))
    throw new UsageError(`--cursor: expected a SCAN cursor (digits), got ${JSON.stringify(args.cursor)}`);
  const root = rootScope(ctx);
  return withRedis(ctx, async (client) => {
    const found: string[] = [];
    let cursor = args.cursor;
    do {
      const reply = await client.scan(cursor, { MATCH: scope.dataPattern, COUNT: SCAN_COUNT });
      cursor = String(reply.cursor);
      found.push(...reply.keys);
    } while (cursor !== '0' && found.length < args.limit);
    // A SCAN call may return more than asked; the rest are seen again from the returned cursor
    // only if we stop before them, so print everything this page's calls returned.
    const ttls = await Promise.all(found.map((k) => client.pTTL(k)));
    const rows = found.map((redisKey, i) => ({
      ...parseEntryKey(root, redisKey),
      redisKey,
      ttlMs: ttls[i] ?? -2,
    }));
    if (ctx.json) {
      ctx.out(JSON.stringify({ keys: rows, nextCursor: cursor === '0' ? null : cursor }));
      return 0;
    }
    for (const row of rows) {
      ctx.out(
        `${row.scope ?? '?'}\t${row.key ?? row.redisKey}\t${row.ttlMs < 0 ? 'no ttl' : `ttl ${Math.round(row.ttlMs / 1000)}s`}`,
      );
    }
    ctx.out(
      cursor === '0'
        ? `${rows.length} key(s); scan complete`
        : `${rows.length} key(s); more: larder keys --namespace ${args.namespace}${args.tenant === undefined ? '' : ` --tenant ${args.tenant}`} --cursor ${cursor}`,
    );
    return 0;
  });
}
