import type { Logger } from '../../index.js';
import type { ServerConfig } from '../config.js';
import { BullmqJobRunner } from './bullmq-runner.js';
import { InlineJobRunner } from './inline-runner.js';
import type { JobHandlers, JobRunner, RetryPolicy } from './job-runner.js';

/** Tuning of the job runner; every field has a default. */
export type JobsOptions = {
  /** @default {@link DEFAULT_RETRY_POLICY} (3 attempts, 1 s exponential back-off) */
  policy?: RetryPolicy;
  /** Jobs of one queue running at once in this process. @default 4 */
  concurrency?: number;
  /** Longest wait for Redis on an API call before an enqueue runs inline. @default 1000 */
  commandTimeoutMs?: number;
  /** Longest wait on close for active BullMQ jobs. @default 10000 */
  closeTimeoutMs?: number;
};

/**
 * The service's job runner: BullMQ when the config has Redis (queues prefixed
 * `larder-jobs:<LARDER_ENV>`), inline otherwise (and health says why).
 */
export function createJobRunner(
  config: ServerConfig,
  handlers: JobHandlers,
  logger: Logger,
  options: JobsOptions = {},
): JobRunner {
  if (config.redis === undefined) {
    return new InlineJobRunner({
      handlers,
      policy: options.policy,
      concurrency: options.concurrency,
      logger,
      reason: `${config.redisReason.replace(/: the service runs memory-only$/, '')}: jobs run inline in this process (retries and dead letters in memory, lost on restart)`,
    });
  }
  return new BullmqJobRunner({
    connection: config.redis.connection(),
    prefix: `larder-jobs:${config.environment}`,
    handlers,
    policy: options.policy,
    concurrency: options.concurrency,
    commandTimeoutMs: options.commandTimeoutMs,
    closeTimeoutMs: options.closeTimeoutMs,
    trustedServer: config.redisMode === 'private',
    logger,
  });
}
