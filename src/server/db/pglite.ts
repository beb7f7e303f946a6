import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Database, Queryable, QueryResult } from './database.js';

/** Options of {@link fromPGlite}. */
export type FromPGliteOptions = {
  /**
   * Shown as the database's `location`.
   * @default 'memory'
   */
  location?: string;
  /**
   * Whether `close()` closes the PGlite instance. Pass `false` for an instance you close yourself.
   * @default true
   */
  closeInstance?: boolean;
};

/**
 * Opens PGlite in `dataDir` (created if missing), or in memory when `dataDir` is `undefined`.
 * The first start in a new folder runs `initdb` and takes a few seconds; later starts reopen it.
 */
export async function openPGlite(dataDir: string | undefined): Promise<Database> {
  if (dataDir === undefined) return fromPGlite(await PGlite.create());
  mkdirSync(dataDir, { recursive: true });
  const unlock = lockFolder(dataDir);
  try {
    const db = fromPGlite(await PGlite.create(dataDir), { location: dataDir });
    return {
      ...db,
      async close() {
        await db.close();
        unlock();
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}

/**
 * PGlite is one process's database: two processes on one folder would corrupt it, and it has no
 * lock of its own. `<folder>.lock` holds the owner's pid; a lock whose process is gone is taken over.
 * @throws Error naming the folder and the process that holds it.
 */
function lockFolder(dataDir: string): () => void {
  const path = `${dataDir}.lock`;
  try {
    writeFileSync(path, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const owner = Number(readFileSync(path, 'utf8'));
    if (Number.isSafeInteger(owner) && owner > 0 && isRunning(owner)) {
      throw new Error(
        `The PGlite folder ${dataDir} is in use by process ${owner}${owner === process.pid ? ' (this one)' : ''}: PGlite allows one process per folder. Stop it, or give this one another DATA_DIR`,
        { cause: error },
      );
    }
    writeFileSync(path, String(process.pid));
  }
  return () => rmSync(path, { force: true });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wraps a PGlite instance as a {@link Database}. PGlite runs one query at a time, in order. */
export function fromPGlite(pglite: PGlite, options: FromPGliteOptions = {}): Database {
  const closeInstance = options.closeInstance ?? true;
  return {
    engine: 'pglite',
    location: options.location ?? 'memory',
    ...queryable(pglite),
    transaction: (fn) => pglite.transaction((tx) => fn(queryable(tx))),
    async close() {
      if (closeInstance && !pglite.closed) await pglite.close();
    },
  };
}

function queryable(target: PGlite | Transaction): Queryable {
  return {
    async query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const result = await target.query<R>(sql, [...params]);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await target.exec(sql);
    },
  };
}
