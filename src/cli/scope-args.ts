import type { CacheScope } from '../index.js';
import { unescapeSegment } from '../keys/escape.js';
import { Scope } from '../keys/scope.js';
import { type CliContext, UsageError } from './context.js';

/** The `--namespace` / `--tenant` options of a command, as a key-space scope. */
export type ScopeArgs = { namespace?: string; tenant?: string };

/** The root scope of the cache the service runs (`<prefix>[:<environment>]`). */
export function rootScope(ctx: CliContext): Scope {
  return Scope.root(ctx.environment === undefined ? ctx.prefix : `${ctx.prefix}:${ctx.environment}`);
}

/** The scope `--namespace` and `--tenant` name (a tenant needs a namespace, as in the service). */
export function scopeOf(ctx: CliContext, args: ScopeArgs): Scope {
  if (args.tenant !== undefined && args.namespace === undefined) {
    throw new UsageError('--tenant needs --namespace (tenants live inside a namespace)');
  }
  let scope = rootScope(ctx);
  try {
    if (args.namespace !== undefined) {
      for (const name of args.namespace.split('/')) scope = scope.child('namespace', name);
    }
    if (args.tenant !== undefined) scope = scope.child('tenant', args.tenant);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return scope;
}

/** One entry key read back: its scope path (`leads/@org-1`) and its key within it. */
export type ListedKey = { scope: string; key: string };

/** Reads a Redis entry key of `root` back into scope and key; `undefined` for anything else. */
export function parseEntryKey(root: Scope, redisKey: string): ListedKey | undefined {
  const prefix = `${root.base}:d`;
  if (!redisKey.startsWith(prefix)) return undefined;
  // Segments are escaped, so `:` only ever separates them: ':' + scope segments + ':' + key.
  const parts = redisKey.slice(prefix.length).split(':');
  if (parts.length < 2 || parts[0] !== '') return undefined;
  const key = unescapeSegment(parts.at(-1) as string);
  const scope = parts
    .slice(1, -1)
    .map((s) => (s.startsWith('@') ? `@${unescapeSegment(s.slice(1))}` : unescapeSegment(s)))
    .join('/');
  return { scope, key };
}

/** The cache view `--namespace` (`a/b` nests) and `--tenant` name, as {@link scopeOf} reads them. */
export function viewOf(cache: CacheScope, args: ScopeArgs): CacheScope {
  let view = cache;
  for (const name of args.namespace?.split('/') ?? []) view = view.namespace(name);
  return args.tenant === undefined ? view : view.forTenant(args.tenant);
}
