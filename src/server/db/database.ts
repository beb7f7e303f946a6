import type { Logger } from '../../index.js';

/** One row of a result, as the driver parsed it (timestamps are `Date`s, `uuid` and `text` strings). */
export type Row = Record<string, unknown>;

/** What a query returns, the same for PGlite and node-postgres. */
export type QueryResult<R> = {
  rows: R[];
  /** Rows returned, or changed by an INSERT/UPDATE/DELETE without RETURNING. */
  rowCount: number;
};

/** Runs SQL: the whole surface the service uses, so that PGlite and Postgres are interchangeable. */
export interface Queryable {
  /** One statement, with `$1`-style parameters. */
  query<R extends object = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** A script of statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** A database connection (PGlite) or pool (node-postgres) with a lifecycle. */
export interface Database extends Queryable {
  /** `pglite`: in-process Postgres (WebAssembly); `postgres`: a server reached with node-postgres. */
  readonly engine: DatabaseEngine;
  /** `memory`, the PGlite data folder, or the server URL with credentials redacted. Safe to log. */
  readonly location: string;
  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when
   * it throws (the error is rethrown).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes the connection or pool. Further queries fail. */
  close(): Promise<void>;
}

/** Union of the engines a {@link Database} runs on. */
export type DatabaseEngine = 'pglite' | 'postgres';

/** Where the service keeps its data; read from the environment by `loadConfig`. */
export type DatabaseTarget =
  | {
      readonly engine: 'pglite';
      /** Folder of PGlite's data files, created if missing; `undefined` keeps everything in memory. */
      readonly dataDir: string | undefined;
    }
  | {
      readonly engine: 'postgres';
      /** The server URL with credentials redacted, safe to log and to return from health routes. */
      readonly endpoint: string;
      /** The full connection string; a function so that logging the config never prints a password. */
      readonly connectionString: () => string;
      /**
       * Most connections in the pool.
       * @default 10
       */
      readonly maxConnections?: number;
    };

/** Options of {@link openDatabase}. */
export type OpenDatabaseOptions = {
  /** Receives errors of idle pooled connections (node-postgres), which have no caller to reject. */
  logger?: Logger;
};

/**
 * Opens the database a target names: PGlite (in a folder, or in memory) or a Postgres server
 * through a node-postgres pool. Resolves once the database answers.
 * @throws when PGlite cannot start in its folder, or Postgres cannot be reached (the message names
 * the endpoint, credentials redacted).
 * @example
 * const db = await openDatabase(config.database, { logger: app.log });
 * await runMigrations(db);
 */
export async function openDatabase(
  target: DatabaseTarget,
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  // Imported on demand: a service on Postgres never loads PGlite's WebAssembly, and the reverse.
  if (target.engine === 'pglite') {
    const { openPGlite } = await import('./pglite.js');
    return openPGlite(target.dataDir);
  }
  const { openPostgres } = await import('./postgres.js');
  return openPostgres(target, options.logger);
}
