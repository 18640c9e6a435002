import { type ChildProcess, spawn } from 'node:child_process';

/**
 * Run coturn's `turnutils_uclient` with `args` under `timeout -s KILL` (s),
 * collecting stdout and stderr together. Resolves with the exit code (124/137
 * when the time ran out) and the output; never rejects.
 */
export function runUclient(args: string[], timeoutS = 30): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('timeout', ['-s', 'KILL', String(timeoutS), 'turnutils_uclient', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** The message counts of turnutils_uclient's summary line (`tot_send_msgs=N, tot_recv_msgs=M`), or undefined when absent. */
export function uclientCounts(out: string): { sent: number; recv: number } | undefined {
  const m = /start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out);
  return m ? { sent: Number(m[1]), recv: Number(m[2]) } : undefined;
}

/**
 * Starts coturn's turnutils_peer (UDP echo) on 127.0.0.1:`port` and waits 300 ms for it to bind. Spawned
 * directly, not under `timeout`, so the child's PID is the peer's; stop it with stopTurnutilsPeer.
 */
export async function startTurnutilsPeer(port: number): Promise<ChildProcess> {
  const peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return peer;
}

/** Kills a peer started by startTurnutilsPeer, by its PID, if it still runs. */
export function stopTurnutilsPeer(peer: ChildProcess | undefined): void {
  if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid, 'SIGKILL');
}
