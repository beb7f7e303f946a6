import { ensurePGliteTemplate } from './pglite.js';
import { assertRedisServerInstalled } from './redis-server.js';

/**
 * Fails the whole run at once, with the install command, when redis-server is missing; makes the
 * PGlite template the service tests start their in-memory databases from.
 */
export default async function setup(): Promise<void> {
  assertRedisServerInstalled();
  await ensurePGliteTemplate();
}
