import type { Logger } from '../../index.js';
import { ServiceError, ServiceErrorCode } from '../errors.js';
import {
  backoffDelay,
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

/** Options of {@link InlineJobRunner}. */
export type InlineJobRunnerOptions = {
  handlers: JobHandlers;
  /** @default {@link DEFAULT_RETRY_POLICY} */
  policy?: RetryPolicy;
  /**
   * Jobs of one queue running at once; the others wait their turn.
   * @default 4
   */
  concurrency?: number;
  /**
   * Most jobs waiting, running or backing off at once, over all queues; beyond it `enqueue` is
   * refused (503) rather than growing memory without bound.
   * @default 10000
   */
  maxBacklog?: number;
  /**
   * Dead letters kept; past it the oldest is dropped (and logged).
   * @default 1000
   */
  maxDeadLetters?: number;
  /** Why jobs run inline, for health output. */
  reason?: string;
  logger?: Logger;
};

type InlineJob = { id: string; queue: JobQueueName; data: unknown };
type Counts = Omit<QueueCounts, 'name'>;

/**
 * Runs jobs in this process, with the BullMQ runner's retry policy (attempts, exponential
 * back-off) and a bounded in-memory dead-letter list. Used when the service has no Redis, and by
 * the BullMQ runner for jobs Redis could not take. Nothing here survives a restart: `close()`
 * (app shutdown) waits for every accepted job, cutting back-off waits short.
 */
export class InlineJobRunner implements JobRunner {
  readonly mode = 'inline' as const;
  readonly #handlers: JobHandlers;
  readonly #policy: RetryPolicy;
  readonly #concurrency: number;
  readonly #maxBacklog: number;
  readonly #maxDeadLetters: number;
  readonly #reason: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #counts = new Map<JobQueueName, Counts>(
    JOB_QUEUES.map((q) => [q, { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 }]),
  );
  // Per queue: jobs waiting for a free slot, each a function that starts it.
  readonly #waiting = new Map<JobQueueName, Array<() => void>>(JOB_QUEUES.map((q) => [q, []]));
  readonly #deadLetters: DeadLetter[] = [];
  readonly #running = new Set<Promise<void>>();
  // Back-off waits in progress; close() ends them early.
  readonly #sleepers = new Set<() => void>();
  #nextId = 0;
  #nextDeadLetterId = 0;
  #closing = false;

  constructor(options: InlineJobRunnerOptions) {
    this.#handlers = options.handlers;
    this.#policy = options.policy ?? DEFAULT_RETRY_POLICY;
    this.#concurrency = options.concurrency ?? 4;
    this.#maxBacklog = options.maxBacklog ?? 10_000;
    this.#maxDeadLetters = options.maxDeadLetters ?? 1000;
    this.#reason = options.reason;
    this.#logger = options.logger;
  }

  async started(): Promise<void> {}

  async enqueue<Q extends JobQueueName>(queue: Q, data: JobData[Q]): Promise<EnqueuedJob> {
    return this.#accept(queue, data);
  }

  async overview(): Promise<JobsOverview> {
    return {
      mode: 'inline',
      queues: this.counts(),
      deadLetters: { count: this.#deadLetters.length },
      available: true,
      ...(this.#reason === undefined ? {} : { reason: this.#reason }),
    };
  }

  /** Counts per queue, synchronously (the BullMQ runner adds them to its own). */
  counts(): QueueCounts[] {
    return JOB_QUEUES.map((name) => ({ name, ...(this.#counts.get(name) as Counts) }));
  }

  async deadLetters(limit: number): Promise<{ count: number; deadLetters: DeadLetter[] }> {
    return { count: this.#deadLetters.length, deadLetters: this.#deadLetters.slice(0, limit) };
  }

  /** Dead letters held in memory. */
  get deadLetterCount(): number {
    return this.#deadLetters.length;
  }

  async retryDeadLetter(id: string): Promise<EnqueuedJob> {
    const index = this.#deadLetters.findIndex((d) => d.id === id);
    const letter = this.#deadLetters[index];
    if (letter === undefined) {
      throw new ServiceError(ServiceErrorCode.NotFound, `No dead letter has the id ${JSON.stringify(id)}`);
    }
    const job = this.#accept(letter.queue, letter.data);
    this.#deadLetters.splice(index, 1);
    return job;
  }

  health(): JobsHealth {
    return {
      mode: 'inline',
      ready: !this.#closing,
      ...(this.#reason === undefined ? {} : { reason: this.#reason }),
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const wake of this.#sleepers) wake();
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  #accept(queue: JobQueueName, data: unknown): EnqueuedJob {
    if (this.#closing) {
      throw new ServiceError(
        ServiceErrorCode.Unavailable,
        'The service is shutting down: no new jobs are taken',
      );
    }
    if (this.#running.size >= this.#maxBacklog) {
      throw new ServiceError(
        ServiceErrorCode.Unavailable,
        `Too many jobs in progress (${this.#maxBacklog}): try again later`,
      );
    }
    const job: InlineJob = { id: `inline-${++this.#nextId}`, queue, data };
    const run = this.#run(job).finally(() => this.#running.delete(run));
    this.#running.add(run);
    return { id: job.id, queue, mode: 'inline' };
  }

  async #run(job: InlineJob): Promise<void> {
    const counts = this.#counts.get(job.queue) as Counts;
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.#policy.attempts; attempt++) {
      if (attempt > 1) {
        counts.delayed++;
        await this.#sleep(backoffDelay(this.#policy, attempt - 1));
        counts.delayed--;
      }
      await this.#acquire(job.queue, counts);
      try {
        await this.#handlers[job.queue](job.data);
        counts.completed++;
        return;
      } catch (error) {
        lastError = error;
        this.#logger?.warn(
          { err: error, jobId: job.id, queue: job.queue, attempt, attempts: this.#policy.attempts },
          `job ${job.id} failed (attempt ${attempt} of ${this.#policy.attempts})`,
        );
      } finally {
        this.#release(job.queue, counts);
      }
    }
    counts.failed++;
    this.#deadLetter(job, lastError);
  }

  /** Resolves when a job of `queue` holds a slot (at most `concurrency` at once), counted as active. */
  async #acquire(queue: JobQueueName, counts: Counts): Promise<void> {
    if (counts.active < this.#concurrency) {
      counts.active++;
      return;
    }
    counts.waiting++;
    // The job releasing a slot hands it over: `active` stays as it is.
    await new Promise<void>((resolve) => this.#waiting.get(queue)?.push(resolve));
    counts.waiting--;
  }

  #release(queue: JobQueueName, counts: Counts): void {
    const next = this.#waiting.get(queue)?.shift();
    if (next === undefined) counts.active--;
    else next();
  }

  #deadLetter(job: InlineJob, error: unknown): void {
    this.#deadLetters.push({
      id: `inline-dl-${++this.#nextDeadLetterId}`,
      queue: job.queue,
      name: JOB_NAMES[job.queue],
      data: job.data,
      failedReason: errorMessage(error),
      attempts: this.#policy.attempts,
      jobId: job.id,
      failedAt: new Date().toISOString(),
    });
    if (this.#deadLetters.length > this.#maxDeadLetters) {
      const dropped = this.#deadLetters.shift();
      this.#logger?.error({ deadLetter: dropped }, 'inline dead-letter list full: dropped the oldest letter');
    }
    this.#logger?.error(
      { jobId: job.id, queue: job.queue, err: error },
      `job ${job.id} failed ${this.#policy.attempts} attempts: dead-lettered`,
    );
  }

  #sleep(ms: number): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }
}
