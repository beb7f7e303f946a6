/** Most commands one pipeline carries; a larger batch goes out and a new one starts. */
const MAX_PIPELINED = 512;

type Pending<I> = {
  readonly item: I;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
};

/**
 * Sends the commands issued during one tick together, for a client that writes each command to
 * the socket on its own (ioredis without automatic pipelining). As in {@link coalesceMget}, the
 * batch goes out on `process.nextTick`; a lone command is sent by `sendOne`, a batch by
 * `sendMany`, which resolves one outcome per item (`undefined`, or that item's error), so each
 * caller sees only its own command fail.
 */
export function pipelinePerTick<I>(
  sendOne: (item: I) => Promise<void>,
  sendMany: (items: readonly I[]) => Promise<ReadonlyArray<unknown>>,
): (item: I) => Promise<void> {
  let pending: Array<Pending<I>> = [];

  const flush = () => {
    const batch = pending;
    pending = [];
    if (batch.length === 0) return;
    const run = (send: () => Promise<unknown>) => {
      try {
        return send();
      } catch (error) {
        return Promise.reject(error);
      }
    };
    if (batch.length === 1) {
      const only = batch[0] as Pending<I>;
      run(() => sendOne(only.item)).then(() => only.resolve(), only.reject);
      return;
    }
    run(() => sendMany(batch.map((p) => p.item))).then(
      (outcomes) => {
        batch.forEach((p, i) => {
          const error = (outcomes as ReadonlyArray<unknown>)[i];
          if (error === undefined || error === null) p.resolve();
          else p.reject(error);
        });
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
      },
    );
  };

  return (item) =>
    new Promise<void>((resolve, reject) => {
      if (pending.length === 0) process.nextTick(flush);
      else if (pending.length >= MAX_PIPELINED) flush();
      pending.push({ item, resolve, reject });
    });
}
