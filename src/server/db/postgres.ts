import pg from 'pg';
import type { Logger } from '../../index.js';
import type { Database, DatabaseTarget, Queryable, QueryResult } from './database.js';

const DEFAULT_MAX_CONNECTIONS = 10;
// A server that does not answer within this long at start is reported, not waited on forever.
const CONNECT_TIMEOUT_MS = 5000;

/**
 * Opens a node-postgres pool on the target and checks that the server answers.
 * @throws Error naming the endpoint (credentials redacted) when the server cannot be reached.
 */
export async function openPostgres(
  target: Extract<DatabaseTarget, { engine: 'postgres' }>,
  logger: Logger | undefined,
): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: target.connectionString(),
    max: target.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle connection that breaks (server restart, network) emits here, with no query to reject;
  // without a listener node-postgres would crash the process. The pool replaces the connection.
  pool.on('error', (error) => {
    logger?.warn({ err: error, endpoint: target.endpoint }, 'database: an idle Postgres connection failed');
  });
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end();
    throw new Error(
      `Cannot reach Postgres at ${target.endpoint} (DATABASE_URL): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    engine: 'postgres',
    location: target.endpoint,
    ...queryable(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(queryable(client));
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (error) {
        // A connection whose ROLLBACK failed is in an unknown state: release(err) makes the pool
        // destroy it instead of handing it to the next caller. The caller gets the original error.
        const rollback = await client.query('ROLLBACK').then(
          () => undefined,
          (rollbackError: unknown) => rollbackError as Error,
        );
        client.release(rollback);
        throw error;
      }
    },
    close: () => pool.end(),
  };
}

function queryable(target: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const result = await target.query<R & pg.QueryResultRow>(sql, [...params]);
      return { rows: result.rows, rowCount: result.rowCount ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      // Without parameters node-postgres uses the simple query protocol, which runs a whole script.
      await target.query(sql);
    },
  };
}
