/** Most keys one merged MGET carries; a larger batch goes out and a new one starts. */
const MAX_MERGED_KEYS = 1024;

type Waiter<R> = {
  readonly keys: readonly string[];
  readonly resolve: (replies: R[]) => void;
  readonly reject: (error: unknown) => void;
};

/**
 * Merges the MGETs issued during one tick into a single MGET (keys deduplicated), and hands each
 * caller its own replies in its own order. Sent on `process.nextTick`, which runs once the
 * current microtasks have drained: the calls a socket read sets off (every caller whose reply
 * arrived in it, each issuing its next read) become one command, and a lone call goes out
 * before the event loop moves on, so it waits for nothing.
 *
 * Larder's reads are MGETs of an entry and its scope's version counters; under concurrency the
 * same counters appear in every call. One merged command costs Redis and the client one
 * request and one reply instead of one per caller, which is what keeps a client without
 * automatic pipelining (ioredis) CPU-bound on its own work rather than on one socket write per
 * command. A failure of the merged command rejects every caller in it, as their own commands
 * would have failed.
 */
export function coalesceMget<R>(
  send: (keys: readonly string[]) => Promise<R[]>,
): (keys: readonly string[]) => Promise<R[]> {
  let waiters: Array<Waiter<R>> = [];
  let queuedKeys = 0;

  const sendSafely = (keys: readonly string[]): Promise<R[]> => {
    try {
      return send(keys);
    } catch (error) {
      return Promise.reject(error);
    }
  };

  const flush = () => {
    const batch = waiters;
    waiters = [];
    queuedKeys = 0;
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const only = batch[0] as Waiter<R>;
      sendSafely(only.keys).then(only.resolve, only.reject);
      return;
    }
    const merged: string[] = [];
    const slot = new Map<string, number>();
    const positions = batch.map(({ keys }) =>
      keys.map((key) => {
        let at = slot.get(key);
        if (at === undefined) {
          at = merged.push(key) - 1;
          slot.set(key, at);
        }
        return at;
      }),
    );
    sendSafely(merged).then(
      (replies) => {
        batch.forEach((waiter, i) =>
          waiter.resolve((positions[i] as number[]).map((at) => replies[at] as R)),
        );
      },
      (error: unknown) => {
        for (const waiter of batch) waiter.reject(error);
      },
    );
  };

  return (keys) =>
    new Promise<R[]>((resolve, reject) => {
      if (waiters.length === 0) process.nextTick(flush);
      // Over the cap: this batch goes now; the flush already scheduled sends the next one.
      else if (queuedKeys + keys.length > MAX_MERGED_KEYS) flush();
      waiters.push({ keys, resolve, reject });
      queuedKeys += keys.length;
    });
}
