import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where an admin token came from. */
export type AdminTokenSource = 'file' | 'generated';

/** Result of {@link loadOrCreateAdminToken}. */
export type StoredAdminToken = {
  token: string;
  /** The file holding it (mode 0600). */
  path: string;
  /** `generated` on the first start in this data folder, `file` afterwards. */
  source: AdminTokenSource;
};

/** Name of the file, in the service's data folder, that keeps a generated admin token. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The admin token kept in `<dataDir>/admin-token`, generated (32 random bytes, base64url) and
 * written there with mode 0600 the first time, so that it stays the same across restarts.
 * Used when `LARDER_ADMIN_TOKEN` is unset.
 * @throws when the folder or file cannot be read or written, or the file is empty.
 */
export async function loadOrCreateAdminToken(dataDir: string): Promise<StoredAdminToken> {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const stored = await readToken(path);
  if (stored !== undefined) return { token: stored, path, source: 'file' };

  const token = randomBytes(32).toString('base64url');
  await mkdir(dataDir, { recursive: true });
  // Written aside, then linked into place: the file appears whole or not at all, and when two
  // services start at once in one folder the second link fails and both use the first token.
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(draft, `${token}\n`, { mode: 0o600 });
  try {
    await link(draft, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readToken(path);
    if (winner === undefined)
      throw new Error(`${path} vanished while it was being created`, { cause: error });
    return { token: winner, path, source: 'file' };
  } finally {
    await unlink(draft);
  }
  return { token, path, source: 'generated' };
}

async function readToken(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const token = text.trim();
  if (token === '') {
    throw new Error(`${path} is empty: delete it to generate a new admin token, or set LARDER_ADMIN_TOKEN`);
  }
  return token;
}
