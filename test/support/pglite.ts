import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Database } from '../../src/server/db/database.js';
import { fromPGlite } from '../../src/server/db/pglite.js';

// A fresh PGlite runs initdb, which takes 3–5 s. Tests start from a dump of a freshly initialised
// (empty, unmigrated) data directory instead, in well under a second. The dump is made once per
// PGlite version and kept in the system's temp folder.
const version = JSON.parse(
  readFileSync(
    join(dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite')), '..', 'package.json'),
    'utf8',
  ),
) as { version: string };
const TEMPLATE = join(tmpdir(), 'larder-test-pglite', `initdb-${version.version}.tar`);

/** Makes the template dump unless it exists. Called once per run by the global setup. */
export async function ensurePGliteTemplate(): Promise<void> {
  if (existsSync(TEMPLATE)) return;
  const pglite = await PGlite.create();
  try {
    const dump = await pglite.dumpDataDir('none');
    mkdirSync(dirname(TEMPLATE), { recursive: true });
    // Written aside, then renamed: a concurrent run never reads half a file.
    const partial = `${TEMPLATE}.${process.pid}.partial`;
    writeFileSync(partial, new Uint8Array(await dump.arrayBuffer()));
    renameSync(partial, TEMPLATE);
  } finally {
    await pglite.close();
  }
}

/** A fresh in-memory PGlite with an empty, unmigrated database (no folder). */
export function memoryPGlite(): PGlite {
  if (!existsSync(TEMPLATE)) throw new Error(`No PGlite template at ${TEMPLATE}: the global setup makes it`);
  return new PGlite({ loadDataDir: new Blob([readFileSync(TEMPLATE)]) });
}

/** {@link memoryPGlite} as the service's {@link Database}; `close()` closes the instance. */
export function memoryDatabase(): Database {
  return fromPGlite(memoryPGlite());
}
