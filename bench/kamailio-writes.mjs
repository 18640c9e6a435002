// Checks that Kamailio with usrloc written through to PostgreSQL (bench/kamailio.mjs, usrloc 'postgres')
// writes a binding before it answers 200: registers users over UDP and counts the rows of `location`,
// then holds an exclusive lock on `location` for LOCK_S seconds and registers once more: with db_mode 1
// the save() waits for the lock, so the 200 comes only after it is released (about LOCK_S − 0.5 s later).
//
//   node bench/kamailio-writes.mjs [users=20]      (inside a network namespace, like every bench)
import { startKamailio, stopKamailio } from './kamailio.mjs';
import { SipConnection, registerOnce } from './sip-client.mjs';
import { startProcess, sleep } from './lib.mjs';
import { pgBin } from './postgres.mjs';
import { join } from 'node:path';

const USERS = Number(process.argv[2] ?? 20);
/** How long the lock on `location` is held, s. */
const LOCK_S = 3;
const ports = { udp: 28174, tcp: 28174, tls: 28175 };

/** One authenticated REGISTER of `user` (password pw-<user>) over UDP: { status, ms } (ms from the first REGISTER to the final response). */
async function register(user) {
  const c = await new SipConnection({ port: ports.udp, transport: 'udp' }).open();
  try {
    const t0 = performance.now();
    const r = await registerOnce(c, { user, password: `pw-${user}`, contact: `<sip:${user}@127.0.0.1:5999>` });
    return { status: r.status, ms: Math.round(performance.now() - t0) };
  } finally {
    c.close();
  }
}

const k = await startKamailio(ports, 4, 'postgres');
try {
  const statuses = {};
  for (let i = 0; i < USERS; i++) {
    const { status } = await register(`user${i}`);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  console.log(`${USERS} REGISTERs: responses ${JSON.stringify(statuses)}; rows in location: ${(await k.pg.psql('SELECT count(*) FROM location')).trim()}`);
  const sql = `BEGIN; LOCK TABLE location IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(${LOCK_S}); COMMIT;`;
  const lock = startProcess(join(pgBin(), 'psql'), ['-h', '127.0.0.1', '-p', String(k.pg.port), '-U', 'postgres', '-d', 'kamailio', '-c', sql]);
  await sleep(500);
  const locked = await register(`user${USERS}`);
  await lock.exited;
  const free = await register(`user${USERS}`);
  console.log(`REGISTER while location is locked for ${LOCK_S} s (from 0.5 s before): ${locked.status} after ${locked.ms} ms; the same again unlocked: ${free.status} after ${free.ms} ms`);
  console.log(`rows in location: ${(await k.pg.psql('SELECT count(*) FROM location')).trim()}`);
} finally {
  await stopKamailio(k);
}
