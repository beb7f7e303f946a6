import { type Job, type JobsOptions, Queue, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger, RedisConnection } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import { InlineJobRunner } from './inline-runner.js';
import {
  type DeadLetter,
  DEFAULT_RETRY_POLICY,
  type EnqueuedJob,
  errorMessage,
  JOB_NAMES,
  JOB_QUEUES,
  type JobData,
  type JobHandlers,
  type JobQueueName,
  type JobRunner,
  type JobsHealth,
  type JobsOverview,
  type QueueCounts,
  type RetryPolicy,
} from './job-runner.js';

/** The queue that holds jobs which failed every attempt. No worker takes from it. */
export const DEAD_LETTER_QUEUE = 'dead-letter';

/** Options of {@link BullmqJobRunner}. */
export type BullmqJobRunnerOptions = {
  /** The service's Redis (`config.redis.connection()`); the runner opens its own connections. */
  connection: RedisConnection;
  /** BullMQ key prefix; keep environments apart. @example 'larder-jobs:production' */
  prefix: string;
  handlers: JobHandlers;
  /** @default {@link DEFAULT_RETRY_POLICY} */
  policy?: RetryPolicy;
  /**
   * Jobs of one queue a worker runs at once.
   * @default 4
   */
  concurrency?: number;
  /**
   * Longest wait for Redis on an API call (enqueue, counts, dead letters); past it an enqueue runs
   * the job inline instead.
   * @default 1000
   */
  commandTimeoutMs?: number;
  /**
   * Longest wait on close for active jobs to finish; then workers are closed anyway (their jobs
   * stay active in Redis and are run again as stalled jobs by the next worker).
   * @default 10000
   */
  closeTimeoutMs?: number;
  /**
   * Skip BullMQ's server checks (version, and its warning on any eviction policy but
   * `noeviction`). For the service's private redis-server only: it is a known Redis 7 whose
   * `volatile-lru` evicts only keys with a TTL (cache entries), never BullMQ's keys, which have none.
   * @default false
   */
  trustedServer?: boolean;
  logger?: Logger;
};

/** What the dead-letter queue's jobs hold. */
type LetterData = Omit<DeadLetter, 'id'>;

/** Finished jobs kept per queue (for counts and deduplication of re-drives); older ones are removed. */
const KEEP_FINISHED = { count: 1000 };

/**
 * Runs jobs on BullMQ: a queue and a worker per job queue, and a `dead-letter` queue.
 *
 * - Each job gets `attempts` with exponential `backoff` (the {@link RetryPolicy}). When the last
 *   attempt fails, the worker adds `{ queue, name, data, failedReason, attempts, jobId, failedAt }`
 *   to `dead-letter` before BullMQ marks the job failed; re-driving adds the job back to its queue
 *   (job id `redrive-<letter id>`, so re-driving one letter twice queues it once) and then removes
 *   the letter.
 * - Connections (ioredis): the workers' with `maxRetriesPerRequest: null`, as BullMQ requires (a
 *   worker waits for Redis rather than failing); the API's with the offline queue off and a command
 *   timeout too, so that a call made while Redis is down fails at once instead of waiting.
 * - An enqueue Redis cannot take (down, or not answering within `commandTimeoutMs`) runs the job
 *   inline in this process (same policy; its dead letters stay in memory). Jobs are at least once:
 *   an enqueue that timed out after Redis stored it runs twice. Handlers are idempotent.
 * - `close()` stops the workers after their active jobs finish (bounded by `closeTimeoutMs`);
 *   waiting and delayed jobs stay in Redis for the next start.
 */
export class BullmqJobRunner implements JobRunner {
  readonly mode = 'bullmq' as const;
  readonly #handlers: JobHandlers;
  readonly #policy: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #logger: Logger | undefined;
  readonly #producer: Redis;
  readonly #workerConnection: Redis;
  readonly #queues: Record<JobQueueName, Queue>;
  readonly #deadLetterQueue: Queue;
  readonly #workers: Worker[];
  readonly #fallback: InlineJobRunner;
  readonly #jobOptions: JobsOptions;
  #lastCounts: QueueCounts[] = JOB_QUEUES.map((name) => ({
    name,
    waiting: 0,
    active: 0,
    delayed: 0,
    failed: 0,
    completed: 0,
  }));
  #lastDeadLetters = 0;
  #closing = false;
  // Handlers running in this process, and close() waiting for none.
  #active = 0;
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: BullmqJobRunnerOptions) {
    this.#handlers = options.handlers;
    this.#policy = options.policy ?? DEFAULT_RETRY_POLICY;
    this.#timeoutMs = options.commandTimeoutMs ?? 1000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.#logger = options.logger;
    this.#jobOptions = {
      attempts: this.#policy.attempts,
      backoff: { type: 'exponential', delay: this.#policy.backoffMs },
      removeOnComplete: KEEP_FINISHED,
      removeOnFail: KEEP_FINISHED,
    };
    this.#fallback = new InlineJobRunner({
      handlers: options.handlers,
      policy: this.#policy,
      concurrency: options.concurrency,
      logger: options.logger,
    });

    this.#producer = this.#connect(options.connection, 'api', {
      maxRetriesPerRequest: null,
      enableOfflineQueue: false,
      commandTimeout: this.#timeoutMs,
    });
    this.#workerConnection = this.#connect(options.connection, 'workers', { maxRetriesPerRequest: null });

    const prefix = options.prefix;
    const trusted = options.trustedServer === true;
    const queue = (name: string) => {
      const q = new Queue(name, { connection: this.#producer, prefix, skipVersionCheck: trusted });
      q.on('error', () => {}); // the connection's own listener logs (once per outage)
      return q;
    };
    this.#queues = Object.fromEntries(JOB_QUEUES.map((name) => [name, queue(name)])) as Record<
      JobQueueName,
      Queue
    >;
    this.#deadLetterQueue = queue(DEAD_LETTER_QUEUE);
    this.#workers = JOB_QUEUES.map((name) => {
      const worker = new Worker(name, (job: Job) => this.#process(name, job), {
        connection: this.#workerConnection,
        prefix,
        skipVersionCheck: trusted,
        concurrency: options.concurrency ?? 4,
      });
      worker.on('error', () => {});
      return worker;
    });
  }

  async started(): Promise<void> {
    const connected = (client: Redis) =>
      client.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              client.off('ready', done);
              resolve();
            };
            const timer = setTimeout(done, this.#timeoutMs);
            client.once('ready', done);
          });
    await Promise.all([connected(this.#producer), connected(this.#workerConnection)]);
  }

  async enqueue<Q extends JobQueueName>(queue: Q, data: JobData[Q]): Promise<EnqueuedJob> {
    this.#assertOpen();
    if (this.#producer.status === 'ready') {
      try {
        const job = await this.#bounded(this.#queues[queue].add(JOB_NAMES[queue], data, this.#jobOptions));
        return { id: String(job.id), queue, mode: 'bullmq' };
      } catch (error) {
        this.#logger?.warn({ err: error, queue }, 'jobs: Redis did not take the job; running it inline');
      }
    } else {
      this.#logger?.warn(
        { queue, redis: this.#producer.status },
        'jobs: Redis is unreachable; running the job inline',
      );
    }
    return this.#fallback.enqueue(queue, data);
  }

  async overview(): Promise<JobsOverview> {
    let available = true;
    let reason: string | undefined;
    try {
      const [counts, letters] = await this.#bounded(
        Promise.all([
          Promise.all(
            JOB_QUEUES.map((name) =>
              this.#queues[name].getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed'),
            ),
          ),
          this.#deadLetterQueue.getWaitingCount(),
        ]),
      );
      this.#lastCounts = JOB_QUEUES.map((name, i) => ({
        name,
        waiting: counts[i]?.waiting ?? 0,
        active: counts[i]?.active ?? 0,
        delayed: counts[i]?.delayed ?? 0,
        failed: counts[i]?.failed ?? 0,
        completed: counts[i]?.completed ?? 0,
      }));
      this.#lastDeadLetters = letters;
    } catch (error) {
      available = false;
      reason = `Redis unreachable (${errorMessage(error)}): counts are the last ones read; new jobs run inline`;
    }
    // Jobs Redis could not take run inline: count them with their queue.
    const inline = this.#fallback.counts();
    return {
      mode: 'bullmq',
      queues: this.#lastCounts.map((c, i) => {
        const extra = inline[i] as QueueCounts;
        return {
          name: c.name,
          waiting: c.waiting + extra.waiting,
          active: c.active + extra.active,
          delayed: c.delayed + extra.delayed,
          failed: c.failed + extra.failed,
          completed: c.completed + extra.completed,
        };
      }),
      deadLetters: { count: this.#lastDeadLetters + this.#fallback.deadLetterCount },
      available,
      ...(reason === undefined ? {} : { reason }),
    };
  }

  async deadLetters(limit: number): Promise<{ count: number; deadLetters: DeadLetter[] }> {
    const [jobs, count] = await this.#redis('list the dead letters', () =>
      Promise.all([
        this.#deadLetterQueue.getJobs(['waiting'], 0, limit - 1, true),
        this.#deadLetterQueue.getWaitingCount(),
      ]),
    );
    const inline = await this.#fallback.deadLetters(limit);
    const letters = jobs
      .filter((job): job is Job => job !== undefined && job !== null)
      .map((job) => ({ ...(job.data as LetterData), id: String(job.id) }));
    return {
      count: count + inline.count,
      deadLetters: [...letters, ...inline.deadLetters].slice(0, limit),
    };
  }

  async retryDeadLetter(id: string): Promise<EnqueuedJob> {
    if (id.startsWith('inline-')) return this.#fallback.retryDeadLetter(id);
    this.#assertOpen();
    const letter = /^\d+$/.test(id)
      ? await this.#redis('read the dead letter', () => this.#deadLetterQueue.getJob(id))
      : undefined;
    if (letter === undefined || letter === null) {
      throw new ServiceError(ServiceErrorCode.NotFound, `No dead letter has the id ${JSON.stringify(id)}`);
    }
    const data = letter.data as LetterData;
    const queue = data.queue;
    if (!(JOB_QUEUES as readonly string[]).includes(queue)) {
      throw new ServiceError(
        ServiceErrorCode.Validation,
        `Dead letter ${id} names an unknown queue ${JSON.stringify(queue)}; it cannot be re-driven`,
      );
    }
    // Add first, then remove: a failure in between leaves the letter, and re-driving it again
    // is deduplicated by the job id.
    const job = await this.#redis('re-drive the dead letter', () =>
      this.#queues[queue].add(data.name, data.data, { ...this.#jobOptions, jobId: `redrive-${id}` }),
    );
    await this.#redis('remove the re-driven dead letter', () => letter.remove());
    return { id: String(job.id), queue, mode: 'bullmq' };
  }

  health(): JobsHealth {
    const ready = this.#producer.status === 'ready' && !this.#closing;
    return ready
      ? { mode: 'bullmq', ready }
      : {
          mode: 'bullmq',
          ready,
          reason: this.#closing
            ? 'Job queues are closing'
            : 'Job queues unreachable (Redis): new jobs run inline in this process until it is back',
        };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    // Workers stop taking jobs at once; their active jobs run to the end (bounded by
    // closeTimeoutMs), then BullMQ gets a moment to record the results. A close that cannot finish
    // (Redis down: BullMQ's QUIT would wait for it forever) is ended by disconnecting: those jobs
    // stay active in Redis and the next worker runs them again as stalled jobs.
    const closing = Promise.all(this.#workers.map((worker) => worker.close()));
    closing.catch(() => {});
    try {
      await withTimeout(this.#idle(), this.#closeTimeoutMs, 'active jobs');
    } catch (error) {
      this.#logger?.warn({ err: error }, 'jobs: active jobs did not finish in time; closing anyway');
    }
    try {
      if (this.#workerConnection.status !== 'ready') throw new Error('Redis is unreachable');
      await withTimeout(closing, this.#timeoutMs, 'worker close');
    } catch {
      await Promise.allSettled(
        this.#workers.map((worker) => withTimeout(worker.disconnect(), this.#timeoutMs, 'worker disconnect')),
      );
      this.#workerConnection.disconnect();
      await withTimeout(closing, this.#timeoutMs, 'worker close').catch(() => {});
    }
    await this.#fallback.close();
    await Promise.all(
      [...Object.values(this.#queues), this.#deadLetterQueue].map((q) =>
        withTimeout(q.close(), this.#timeoutMs, 'queue close').catch(() => {}),
      ),
    );
    this.#producer.disconnect();
    this.#workerConnection.disconnect();
  }

  /** Resolves once no handler is running. */
  #idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** A worker's processor: runs the handler; on the last attempt's failure, dead-letters the job. */
  async #process(queue: JobQueueName, job: Job): Promise<unknown> {
    this.#active++;
    try {
      return await this.#handlers[queue](job.data);
    } catch (error) {
      const attempts = job.opts.attempts ?? 1;
      // attemptsMade counts the attempts before this one.
      if (job.attemptsMade + 1 >= attempts) {
        const letter: LetterData = {
          queue,
          name: job.name,
          data: job.data,
          failedReason: errorMessage(error),
          attempts,
          jobId: String(job.id),
          failedAt: new Date().toISOString(),
        };
        try {
          await this.#deadLetterQueue.add(job.name, letter, { removeOnComplete: true });
          this.#logger?.error(
            { err: error, queue, jobId: job.id },
            `job ${job.id} failed ${attempts} attempts: dead-lettered`,
          );
        } catch (dlqError) {
          // The job still ends in its queue's failed set; it is not lost, only not re-drivable here.
          this.#logger?.error(
            { err: dlqError, queue, jobId: job.id },
            'jobs: could not dead-letter a job that failed every attempt; it stays in the failed set',
          );
        }
      } else {
        this.#logger?.warn(
          { err: error, queue, jobId: job.id, attempt: job.attemptsMade + 1, attempts },
          `job ${job.id} failed (attempt ${job.attemptsMade + 1} of ${attempts}); retrying with back-off`,
        );
      }
      throw error;
    } finally {
      if (--this.#active === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
  }

  /** Runs a Redis call for an API route, mapping failure to a 503 that names what failed. */
  async #redis<T>(what: string, call: () => Promise<T>): Promise<T> {
    if (this.#producer.status !== 'ready') {
      throw new ServiceError(ServiceErrorCode.Unavailable, `Redis is unreachable: cannot ${what} now`);
    }
    try {
      return await this.#bounded(call());
    } catch (error) {
      throw new ServiceError(
        ServiceErrorCode.Unavailable,
        `Redis is unreachable: cannot ${what} now (${errorMessage(error)})`,
      );
    }
  }

  #bounded<T>(promise: Promise<T>): Promise<T> {
    // Twice the per-command timeout: a BullMQ call may be a script load plus the script.
    return withTimeout(promise, this.#timeoutMs * 2, 'Redis call');
  }

  #assertOpen(): void {
    if (this.#closing) {
      throw new ServiceError(
        ServiceErrorCode.Unavailable,
        'The service is shutting down: no new jobs are taken',
      );
    }
  }

  /** An ioredis client that logs an outage once and its end once. */
  #connect(connection: RedisConnection, role: string, overrides: RedisOptions): Redis {
    const base: RedisOptions = { ...overrides, lazyConnect: false };
    const client =
      connection.url !== undefined
        ? new Redis(connection.url, base)
        : new Redis({
            ...base,
            host: connection.host,
            port: connection.port,
            db: connection.db,
            username: connection.username,
            password: connection.password,
            ...(connection.tls === true ? { tls: {} } : {}),
          });
    let down = false;
    client.on('error', (error: unknown) => {
      if (down || this.#closing) return;
      down = true;
      this.#logger?.warn(
        { err: { message: errorMessage(error) }, role },
        `jobs: Redis connection (${role}) lost`,
      );
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      this.#logger?.info({ role }, `jobs: Redis connection (${role}) back`);
    });
    return client;
  }
}

/** Rejects when `promise` has not settled within `ms`; the timer never outlives it. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
