/**
 * The service's entry point: the one file that reads `process.env`, listens and handles signals.
 * Everything else is built by `buildApp()` so tests can run it without a socket.
 */
import { pino } from 'pino';
import { buildApp } from './app.js';
import { loadOrCreateAdminToken } from './auth/admin-token.js';
import { ConfigError, loadConfig, type ServerConfig, withPrivateRedis } from './config.js';
import { type PrivateRedisServer, startPrivateRedis } from './redis/private-redis-server.js';

// Longest wait for in-flight requests and the cache to close on a signal before giving up.
const SHUTDOWN_TIMEOUT_MS = 10_000;

let config: ServerConfig;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // No logger exists yet; the message names the variable and its (redacted) value.
  console.error(`larder service: ${error.message}`);
  process.exit(1);
}

// An admin token is needed for the dashboard's controls; without LARDER_ADMIN_TOKEN one is kept in
// the data folder, generated (and printed once) at the first start.
const stored = config.adminToken === undefined ? await loadOrCreateAdminToken(config.dataDir) : undefined;
if (stored !== undefined) {
  const { token } = stored;
  config = { ...config, adminToken: () => token };
}

const logger = pino();

// No Redis configured: run a private redis-server from PATH (files in <DATA_DIR>/redis), so that a
// first `npm start` shows both tiers; without the binary, memory-only, and health says which.
let privateRedis: PrivateRedisServer | undefined;
let privateRedisMissing: string | undefined;
if (config.redisMode === 'not-configured' && config.privateRedis) {
  const started = await startPrivateRedis({ dataDir: config.dataDir, logger });
  if ('url' in started) {
    privateRedis = started;
    config = withPrivateRedis(config, started.url);
  } else {
    privateRedisMissing = started.reason;
  }
}

const app = buildApp({ config, loggerInstance: logger });
app.addHook('onClose', async () => {
  await privateRedis?.stop();
});
if (stored?.source === 'generated') {
  // Printed once, on purpose: the operator needs it to log in to the dashboard.
  app.log.warn(
    { path: stored.path },
    `admin token generated (LARDER_ADMIN_TOKEN was unset): ${stored.token} (saved in ${stored.path}; it is not shown again)`,
  );
} else if (stored !== undefined) {
  app.log.info({ path: stored.path }, `admin token: read from ${stored.path} (LARDER_ADMIN_TOKEN is unset)`);
}

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  app.log.info({ signal }, 'shutting down');
  setTimeout(() => {
    app.log.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long; exiting');
    process.exit(1);
  }, SHUTDOWN_TIMEOUT_MS).unref();
  try {
    await app.close();
    process.exit(0);
  } catch (error) {
    app.log.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}
process.once('SIGINT', (signal) => void shutdown(signal));
process.once('SIGTERM', (signal) => void shutdown(signal));

try {
  await app.listen({ host: config.host, port: config.port });
} catch (error) {
  app.log.error(
    { err: error, host: config.host, port: config.port },
    'could not start (database, or listening)',
  );
  await app.close();
  process.exit(1);
}

if (config.redisMode === 'configured' || config.redisMode === 'private') {
  app.log.info(
    { redisMode: config.redisMode, endpoint: config.redis?.endpoint },
    `cache: ${config.redisReason} (memory tier in front; serves from memory while Redis is unreachable)`,
  );
} else {
  const why = privateRedisMissing === undefined ? '' : ` (no private redis-server: ${privateRedisMissing})`;
  app.log.warn({ redisMode: config.redisMode }, `cache: ${config.redisReason}${why}`);
}
