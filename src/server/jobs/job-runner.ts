/** The job queues of the service. */
export const JOB_QUEUES = ['lead-classification', 'kpi-recompute'] as const;

/** Union of {@link JOB_QUEUES}. */
export type JobQueueName = (typeof JOB_QUEUES)[number];

/** The job name each queue's jobs carry (BullMQ's `job.name`). */
export const JOB_NAMES: Record<JobQueueName, string> = {
  'lead-classification': 'classify-lead',
  'kpi-recompute': 'recompute-kpis',
};

/** The data of a job, per queue. */
export type JobData = {
  'lead-classification': { leadId: string };
  'kpi-recompute': { organizationId: string };
};

/**
 * Runs one job. It receives the data as stored (from Redis, or re-driven from the dead-letter
 * queue), so it validates it; a rejection is a failed attempt.
 */
export type JobHandler = (data: unknown) => Promise<unknown>;

/** One handler per queue. */
export type JobHandlers = Record<JobQueueName, JobHandler>;

/** How failed jobs are retried, the same in both runners. */
export type RetryPolicy = {
  /**
   * Attempts per job, the first included; a job that fails them all is dead-lettered.
   * @default 3
   */
  attempts: number;
  /**
   * Exponential back-off: attempt n + 1 starts `backoffMs × 2^(n−1)` after attempt n failed.
   * @default 1000
   */
  backoffMs: number;
};

/** The default {@link RetryPolicy}. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 3, backoffMs: 1000 };

/** Where jobs run: BullMQ queues in Redis, or in this process. */
export type JobsMode = 'bullmq' | 'inline';

/** A job accepted by {@link JobRunner.enqueue}. */
export type EnqueuedJob = {
  id: string;
  queue: JobQueueName;
  /**
   * Where it went: `inline` in BullMQ mode means Redis could not take it and it runs in this
   * process instead.
   */
  mode: JobsMode;
};

/** Job counts of one queue (the shape the dashboard reads). */
export type QueueCounts = {
  name: JobQueueName;
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
};

/** `GET /api/jobs`: the dashboard reads exactly `mode`, `queues` and `deadLetters`. */
export type JobsOverview = {
  mode: JobsMode;
  queues: QueueCounts[];
  deadLetters: { count: number };
  /** `false` when the queues in Redis could not be read: counts are then the last ones read. */
  available: boolean;
  reason?: string;
};

/** A job that failed every attempt, parked until re-driven. */
export type DeadLetter = {
  /** Dead-letter id (`inline-…` for jobs that ran in this process). */
  id: string;
  queue: JobQueueName;
  /** The job's name. */
  name: string;
  /** The job's data, as enqueued. */
  data: unknown;
  /** The last attempt's error message. */
  failedReason: string;
  /** Attempts made. */
  attempts: number;
  /** The original job's id. */
  jobId: string;
  /** When the last attempt failed (ISO 8601). */
  failedAt: string;
};

/** The `jobs` entry of `GET /api/health`. */
export type JobsHealth = {
  mode: JobsMode;
  /** Jobs can be queued where `mode` says. */
  ready: boolean;
  reason?: string;
};

/**
 * Runs background jobs with retries, back-off and a dead-letter queue. Two implementations:
 * BullMQ (`bullmq-runner.ts`) when the service has Redis, inline (`inline-runner.ts`) without.
 */
export interface JobRunner {
  readonly mode: JobsMode;
  /**
   * Resolves once the runner is connected (BullMQ: both Redis connections ready), or after a short
   * bounded wait when it cannot connect (jobs then run inline until Redis answers). Never rejects.
   */
  started(): Promise<void>;
  /**
   * Queues a job. It is never lost: when Redis cannot take it, the BullMQ runner runs it inline.
   * @throws ServiceError `E_UNAVAILABLE` once the runner is closing, or when the inline backlog is full.
   */
  enqueue<Q extends JobQueueName>(queue: Q, data: JobData[Q]): Promise<EnqueuedJob>;
  /** Counts per queue and of dead letters. Never throws for an unreachable Redis. */
  overview(): Promise<JobsOverview>;
  /**
   * Dead letters, oldest first, at most `limit`, and how many there are.
   * @throws ServiceError `E_UNAVAILABLE` when Redis cannot be read.
   */
  deadLetters(limit: number): Promise<{ count: number; deadLetters: DeadLetter[] }>;
  /**
   * Re-drives a dead letter: queues its job again (with fresh attempts) and removes the letter.
   * @throws ServiceError `E_NOT_FOUND` for an unknown id, `E_UNAVAILABLE` when Redis cannot be
   * written (the letter then stays).
   */
  retryDeadLetter(id: string): Promise<EnqueuedJob>;
  health(): JobsHealth;
  /**
   * Stops taking jobs, lets running ones finish (a retry waiting out its back-off runs at once in
   * the inline runner), then closes connections.
   */
  close(): Promise<void>;
}

/** `backoffMs × 2^(attempt−1)`: the wait after failed attempt `attempt` (1-based), as BullMQ's exponential back-off. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.round(policy.backoffMs * 2 ** (attempt - 1));
}

/** The message of a thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
