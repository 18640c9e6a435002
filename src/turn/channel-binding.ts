/**
 * Channel bindings of one allocation (RFC 8656 §12): a channel number maps
 * to exactly one peer transport address and back, each binding living 600 s
 * unless refreshed. After expiry a number stays reserved to its old peer for
 * another 300 s (§12), so it cannot be rebound to a different peer then.
 */
import type { TransportAddress } from '../stun/stun-attributes.js';
import { isValidChannelNumber } from './channel-data.js';
import { TurnError } from './turn-error.js';

/** Channel binding lifetime, ms (RFC 8656 §12: 10 minutes). */
export const CHANNEL_LIFETIME_MS = 600_000;
/** Time after expiry during which a channel number or peer stays reserved, ms (RFC 8656 §12: 5 minutes). */
export const CHANNEL_COOLDOWN_MS = 300_000;

/** One channel binding. */
export interface ChannelBinding {
  channel: number;
  peer: TransportAddress;
  expiresAtMs: number;
}

function peerKey(address: string, port: number): string {
  return `${address}|${port}`;
}

/** The channel table of one allocation. Times are ms on the caller's clock. */
export class ChannelTable {
  private readonly byNumber = new Map<number, ChannelBinding>();
  private readonly byPeer = new Map<string, ChannelBinding>();

  /** @param onChange told of every bind/refresh (new expiry, ms) and removal after cooldown (0), e.g. to mirror a data plane. */
  constructor(private readonly onChange?: (binding: ChannelBinding, expiresAtMs: number) => void) {}

  /**
   * Binds `channel` to `peer` or refreshes an existing identical binding (RFC 8656 §11.2).
   * @throws TurnError(400) if the number is out of 0x4000-0x7FFF, bound (or cooling down) to
   *   another peer, or the peer is bound to another number.
   */
  bind(channel: number, peer: TransportAddress, nowMs: number): ChannelBinding {
    if (!isValidChannelNumber(channel)) throw new TurnError(400, 'Bad Request: channel number out of range');
    const byNum = this.byNumber.get(channel);
    const key = peerKey(peer.address, peer.port);
    const byPeer = this.byPeer.get(key);
    if (byNum && peerKey(byNum.peer.address, byNum.peer.port) !== key) {
      throw new TurnError(400, 'Bad Request: channel already bound to another peer');
    }
    if (byPeer && byPeer.channel !== channel) {
      throw new TurnError(400, 'Bad Request: peer already bound to another channel');
    }
    const b: ChannelBinding = byNum ?? { channel, peer: { ...peer }, expiresAtMs: 0 };
    b.expiresAtMs = nowMs + CHANNEL_LIFETIME_MS;
    this.byNumber.set(channel, b);
    this.byPeer.set(key, b);
    this.onChange?.(b, b.expiresAtMs);
    return b;
  }

  /** The live binding for `channel`, or undefined if none or expired. */
  getByChannel(channel: number, nowMs: number): ChannelBinding | undefined {
    const b = this.byNumber.get(channel);
    return b && b.expiresAtMs > nowMs ? b : undefined;
  }

  /** The live binding for peer `address`:`port`, or undefined if none or expired. */
  getByPeer(address: string, port: number, nowMs: number): ChannelBinding | undefined {
    const b = this.byPeer.get(peerKey(address, port));
    return b && b.expiresAtMs > nowMs ? b : undefined;
  }

  /** Forgets bindings whose cooldown has ended; returns how many were removed. */
  sweep(nowMs: number): number {
    let n = 0;
    for (const [num, b] of this.byNumber) {
      if (b.expiresAtMs + CHANNEL_COOLDOWN_MS <= nowMs) {
        this.byNumber.delete(num);
        this.byPeer.delete(peerKey(b.peer.address, b.peer.port));
        this.onChange?.(b, 0);
        n++;
      }
    }
    return n;
  }

  /** Number of stored bindings (including expired ones still cooling down). */
  get size(): number {
    return this.byNumber.size;
  }
}
