/**
 * The caller's ACK for a 2xx before the next request of its dialog.
 *
 * A caller sends the ACK for a 2xx (RFC 3261 §13.2.2.4) and, often at once,
 * a BYE. Both pass this proxy, the ACK without state (§16.11), the BYE through
 * a transaction. With several workers reading one UDP socket the two can land
 * on different workers: the one that reads the ACK hands it to the Call-ID's
 * owner over the mesh, while the owner has already read the BYE itself and
 * forwards it first. A callee that gets the BYE of a dialog it has not seen
 * the ACK of may ignore it (SIPp does), and the caller retransmits the BYE
 * after T1 (500 ms): the late answers of the calls/UDP bench with two workers
 * (bench/RESULTS.md). So the proxy remembers, for a short while, each dialog
 * whose 2xx it forwarded upstream and whose ACK has not passed yet, and holds
 * a request of that dialog from the caller until the ACK has been forwarded,
 * or until the dialog's entry runs out ({@link ACK_WAIT_MS} after the 2xx):
 * the request is then forwarded as it would have been.
 */
import { getHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { fromHeader, toTag } from '../sip/parsed-headers.js';

/** How long after a 2xx went upstream a request of its dialog waits for the caller's ACK, ms. */
export const ACK_WAIT_MS = 250;
/** Most dialogs remembered as awaiting their ACK (the oldest is forgotten past it, releasing what it held). */
export const ACK_WAIT_MAX_DIALOGS = 10_000;
/** Most requests held for one dialog's ACK; past it a request is forwarded at once, unordered. */
export const ACK_WAIT_MAX_HELD = 32;

interface Awaiting {
  /** When the entry runs out (ms, the clock of `nowMs`). */
  untilMs: number;
  /** Requests held for the ACK, run in arrival order. */
  held: (() => void)[];
  timer?: NodeJS.Timeout;
}

/**
 * Dialogs (Call-ID, caller's tag, callee's tag) whose 2xx was forwarded
 * upstream and whose ACK has not been forwarded yet, at most `maxDialogs`,
 * each for `waitMs`. State with a lifetime: one per proxy.
 */
export class AckOrder {
  private readonly awaiting = new Map<string, Awaiting>();

  constructor(
    private readonly waitMs = ACK_WAIT_MS,
    private readonly maxDialogs = ACK_WAIT_MAX_DIALOGS,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  /** Dialogs awaiting their ACK now (expired ones not yet swept included). */
  get size(): number {
    return this.awaiting.size;
  }

  /** A 2xx to an INVITE went upstream: its dialog awaits the caller's ACK. A response without tags is ignored. */
  answered(res: SipResponse): void {
    const key = dialogKey(res);
    if (key === undefined || this.awaiting.has(key)) return;
    const nowMs = this.nowMs();
    this.sweep(nowMs);
    if (this.awaiting.size >= this.maxDialogs) this.release(this.awaiting.keys().next().value!);
    this.awaiting.set(key, { untilMs: nowMs + this.waitMs, held: [] });
  }

  /** The caller's ACK for a 2xx has been forwarded (or dropped): what its dialog held goes now, in order. */
  acked(ack: SipRequest): void {
    const key = dialogKey(ack);
    if (key !== undefined) this.release(key);
  }

  /**
   * Run `go` once the ACK of `req`'s dialog has gone, at most until the
   * dialog's entry runs out; false (and `go` not run) when `req` needs no
   * wait: not awaited, or an ACK or CANCEL (hop by hop, never held), or when
   * the dialog already holds {@link ACK_WAIT_MAX_HELD} requests.
   */
  holdUntilAcked(req: SipRequest, go: () => void): boolean {
    if (this.awaiting.size === 0 || req.method === 'ACK' || req.method === 'CANCEL') return false;
    const key = dialogKey(req);
    const entry = key === undefined ? undefined : this.awaiting.get(key);
    if (!entry) return false;
    const leftMs = entry.untilMs - this.nowMs();
    if (leftMs <= 0) {
      this.release(key!);
      return false;
    }
    if (entry.held.length >= ACK_WAIT_MAX_HELD) return false;
    entry.held.push(go);
    if (!entry.timer) {
      entry.timer = setTimeout(() => this.release(key!), leftMs);
      entry.timer.unref?.();
    }
    return true;
  }

  /** Forget every dialog, running what they held. */
  clear(): void {
    for (const key of [...this.awaiting.keys()]) this.release(key);
  }

  private release(key: string): void {
    const entry = this.awaiting.get(key);
    if (!entry) return;
    this.awaiting.delete(key);
    if (entry.timer) clearTimeout(entry.timer);
    for (const go of entry.held) go();
  }

  /** Forget the entries that ran out, oldest first (the map is in insertion order, every entry lives as long). */
  private sweep(nowMs: number): void {
    for (const [key, entry] of this.awaiting) {
      if (entry.untilMs > nowMs) return;
      this.release(key);
    }
  }
}

/**
 * The dialog of a message from the caller's side: Call-ID, From tag, To tag
 * (RFC 3261 §12); undefined without a To tag or when a header is malformed.
 */
function dialogKey(msg: SipRequest | SipResponse): string | undefined {
  const callId = getHeader(msg, 'call-id');
  const to = toTag(msg);
  if (callId === undefined || to === undefined) return undefined;
  let from: string | undefined;
  try {
    from = fromHeader(msg).params.tag ?? undefined;
  } catch {
    return undefined;
  }
  return from === undefined ? undefined : `${callId}\n${from}\n${to}`;
}
