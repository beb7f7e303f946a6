/**
 * One OS process of the cross-process stampede (scenario 4). JSON lines on stdin:
 * `{ cmd: 'prepare', id, tag, url, lock }` → creates the subject, answers `{ ready: true }`;
 * `{ cmd: 'go', key, concurrency, loaderMs, timeoutMs }` → runs `concurrency` concurrent getOrSet on
 * `key` with a loader that sleeps `loaderMs`, answers `{ loaderCalls, errors, values, ms }`, closes
 * the subject. Exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { type CacheSubject, createSubject, type SubjectId } from '../subjects.js';
import { sleep, withTimeout } from '../workload.js';

type Message =
  | { cmd: 'prepare'; id: SubjectId; tag: string; url: string; lock: boolean }
  | { cmd: 'go'; key: string; concurrency: number; loaderMs: number; timeoutMs: number };

process.on('unhandledRejection', () => undefined); // peers' stray rejections must not kill the worker
const reply = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`);
let subject: CacheSubject | undefined;

for await (const line of createInterface({ input: process.stdin })) {
  try {
    await handle(JSON.parse(line) as Message);
  } catch (error) {
    reply({ error: String(error) });
  }
}
await subject?.close();
process.exit(0);

async function handle(message: Message): Promise<void> {
  if (message.cmd === 'prepare') {
    subject = createSubject(message.id, {
      url: message.url,
      tag: message.tag,
      distributedLock: message.lock,
    });
    await withTimeout(subject.ready(), 10_000);
    reply({ ready: true });
  } else if (subject !== undefined) {
    const s = subject;
    let loaderCalls = 0;
    const loader = async () => {
      loaderCalls++;
      await sleep(message.loaderMs);
      return `value from ${process.pid} #${loaderCalls}`;
    };
    const started = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: message.concurrency }, () =>
        withTimeout(s.getOrSet(message.key, loader, 60_000), message.timeoutMs),
      ),
    );
    const ms = performance.now() - started;
    const values = [...new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [String(r.value)] : [])))];
    const errors = results.filter((r) => r.status === 'rejected').length;
    reply({ loaderCalls, errors, values, ms });
    await s.close();
    subject = undefined;
  }
}
