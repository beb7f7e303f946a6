import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.js';

/** One numbered SQL file of `migrations/`. */
export type Migration = {
  /** The file's number: `001_init.sql` is version 1. */
  version: number;
  /** The file name. */
  name: string;
  sql: string;
};

/** What {@link runMigrations} did. */
export type MigrationResult = {
  /** Versions applied by this call, in order; empty when the schema was up to date. */
  applied: number[];
  /** The schema version after the call. */
  version: number;
};

/** The migrations shipped with the service (`npm run build` copies them next to the compiled code). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

const FILE_PATTERN = /^(\d{3})_[a-z0-9_]+\.sql$/;
// Serialises migrations of instances starting together on one Postgres server. Any constant
// works as long as nothing else in the database takes the same advisory lock.
const MIGRATION_LOCK_ID = 7_337_001;

/**
 * Reads the numbered migrations of `dir` (`001_init.sql`, `002_….sql`), sorted.
 * @throws Error when there are none, or numbers repeat or leave gaps.
 */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (error) {
    throw new Error(`Cannot read migrations in ${dir}: run \`npm run build\` to copy them next to the code`, {
      cause: error,
    });
  }
  const migrations: Migration[] = [];
  for (const name of files.sort()) {
    const match = FILE_PATTERN.exec(name);
    if (match === null) continue;
    migrations.push({ version: Number(match[1]), name, sql: await readFile(`${dir}/${name}`, 'utf8') });
  }
  if (migrations.length === 0) throw new Error(`No migrations (NNN_name.sql) found in ${dir}`);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `Migrations must be numbered 001, 002, … without gaps; found ${m.name} at position ${i + 1}`,
      );
    }
  });
  return migrations;
}

/**
 * Brings the schema up to date: applies the migrations not yet recorded in `schema_migrations`, in
 * order, all in one transaction (a failing migration leaves the schema as it was). Instances
 * starting together take turns on an advisory lock. Idempotent.
 * @throws Error when a migration fails (its file is named, the database error is the `cause`), or
 * the database has a version newer than the service knows.
 */
export async function runMigrations(
  db: Database,
  migrations?: readonly Migration[],
): Promise<MigrationResult> {
  const all = migrations ?? (await loadMigrations());
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    await tx.exec(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const latest = all.at(-1)?.version ?? 0;
    const newer = [...done].filter((v) => v > latest);
    if (newer.length > 0) {
      throw new Error(
        `The database is at schema version ${Math.max(...newer)}, newer than this service's latest migration (${latest}): deploy a newer service`,
      );
    }
    const applied: number[] = [];
    for (const migration of all) {
      if (done.has(migration.version)) continue;
      try {
        await tx.exec(migration.sql);
      } catch (error) {
        throw new Error(`Migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
      }
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return { applied, version: Math.max(latest, ...done) };
  });
}
