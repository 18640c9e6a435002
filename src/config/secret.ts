/**
 * The server secret: 32 random bytes kept in `<data_dir>/secret`.
 *
 * Keyed hashes that must survive a restart (digest nonces, TURN nonces) use
 * it; nodes of a cluster share it by copying the file.
 */
import { randomBytes } from 'node:crypto';
import { dataDirLayout, readOrCreateSecretFile } from './data-dir.js';
import { ConfigError } from './errors.js';

/** Length of the server secret, bytes. */
export const SECRET_BYTES = 32;

/**
 * Read `<dataDir>/secret`, creating it on first call with
 * 32 bytes from the CSPRNG, file mode 0600. Later calls, and other processes
 * given the same file, get the same bytes.
 *
 * @param dataDir directory holding the secret (made by prepareDataDir, see data-dir.ts).
 * @returns the 32-byte secret.
 * @throws ConfigError if the file exists but does not hold exactly 32 bytes,
 *   or cannot be read or written.
 */
export function loadOrCreateSecret(dataDir: string): Buffer {
  const file = dataDirLayout(dataDir).secret;
  try {
    const secret = readOrCreateSecretFile(file, () => randomBytes(SECRET_BYTES));
    if (secret.length !== SECRET_BYTES) {
      throw new ConfigError(file, [`expected ${SECRET_BYTES} bytes of server secret, found ${secret.length}`]);
    }
    return secret;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [`cannot read or create the server secret: ${(err as Error).message}`]);
  }
}
