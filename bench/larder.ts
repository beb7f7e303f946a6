/**
 * Larder as its users run it: the JavaScript that `npm run build` compiles into dist/ (`npm run
 * bench` builds first), typed from the sources. Importing src/ would measure tsx's output
 * instead: tsx compiles with esbuild's `keepNames`, which wraps every closure Larder creates in a
 * `__name()` call that defines a property on it (~5 µs of a 180 µs miss + set in a CPU profile).
 * Peers are measured from their published JavaScript; Larder is too.
 */
import type * as IoredisDriver from '../src/drivers/ioredis.js';
import type * as Library from '../src/index.js';

/** Imports `dist/<path>`, typed as the source module it is compiled from. */
export async function fromDist<T>(path: string): Promise<T> {
  try {
    return (await import(new URL(`../dist/${path}`, import.meta.url).href)) as T;
  } catch (error) {
    throw new Error(
      `dist/${path} is missing or stale: run \`npm run build\` first (the bench measures dist/)`,
      {
        cause: error,
      },
    );
  }
}

export type { Cache } from '../src/index.js';
export const { createCache } = await fromDist<typeof Library>('index.js');
export const { createIoredisDriver } = await fromDist<typeof IoredisDriver>('drivers/ioredis.js');
