/**
 * The per-source gate between the transport and the transaction layer: every
 * inbound message passes {@link SourceGate.admit} before any transaction state
 * is created, so a banned or flooding source costs one Map lookup per message.
 *
 * In order, for each message:
 * 1. a banned source address: dropped (no response, a stream flow is closed);
 * 2. a request whose User-Agent names a scanner: dropped silently;
 * 3. over the per-address rate (token bucket, requests and responses alike):
 *    the address is banned for `banSeconds` and the message dropped.
 * Exempt addresses skip 1 and 3 (never banned), not 2.
 */
import type { Logger } from '../log.js';
import type { SipMessage } from '../sip/message.js';
import type { AddressSet } from './address-set.js';
import type { BanList } from './ban-list.js';
import { TokenBucketLimiter } from './rate-limiter.js';
import type { ScannerFilter } from './scanner-filter.js';

/**
 * Where a message came from, as far as the gate needs it (transport/types.ts
 * `Source` has this shape; security/ does not import the transport layer).
 */
export interface GateSource {
  /** 'udp' | 'tcp' | 'tls' | 'ws' | 'wss'. */
  transport: string;
  remoteAddress: string;
  remotePort: number;
  /** Stream connection id; undefined for UDP. */
  flowId?: string;
}

/** A message with its origin (transport/types.ts `Inbound` has this shape). */
export interface GateInbound {
  msg: SipMessage;
  source: GateSource;
}

/** Options of {@link SourceGate}. */
export interface SourceGateOptions {
  bans: BanList;
  /** Addresses never rate-limited or banned. */
  exempt: AddressSet;
  /** Messages per second per address (sustained); 0 turns the rate limit off. */
  requestsPerSecond: number;
  /** Messages an address may send at once (bucket size); >= 1. */
  burst: number;
  /** Ban length when an address exceeds the rate, s. */
  banSeconds: number;
  scanners: ScannerFilter;
  logger: Logger;
  /** Called when a message is dropped because its source is banned (the server closes the stream flow). */
  onDroppedBanned?: (source: GateSource) => void;
  /** Clock, ms since the epoch; Date.now by default. */
  nowMs?: () => number;
}

/** Admission of inbound messages by source address and User-Agent. */
export class SourceGate {
  private readonly limiter: TokenBucketLimiter | undefined;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  /** Requests dropped because their User-Agent names a scanner (a counter for metrics). */
  scannerDrops = 0;

  constructor(private readonly opts: SourceGateOptions) {
    this.limiter =
      opts.requestsPerSecond > 0 ? new TokenBucketLimiter({ ratePerSecond: opts.requestsPerSecond, burst: Math.max(1, opts.burst) }) : undefined;
    this.log = opts.logger.child({ component: 'abuse' });
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /**
   * True when the message may go on to the transaction layer; false when it
   * is to be dropped without a response. O(1) in the number of sources.
   */
  admit(inbound: GateInbound): boolean {
    const { msg, source } = inbound;
    const address = source.remoteAddress;
    const nowMs = this.nowMs();
    const bans = this.opts.bans;
    if (bans.isBanned(address, nowMs)) {
      if (this.opts.exempt.has(address)) {
        bans.unban(address);
      } else {
        bans.droppedMessages += 1;
        this.opts.onDroppedBanned?.(source);
        return false;
      }
    }
    if (msg.kind === 'request' && this.opts.scanners.matches(msg)) {
      this.scannerDrops += 1;
      if (this.log.isLevelEnabled('debug')) this.log.debug({ address, method: msg.method }, 'scanner request dropped');
      return false;
    }
    if (this.limiter && !this.limiter.take(address, nowMs)) {
      if (this.opts.exempt.has(address)) return true;
      this.limiter.reset(address);
      bans.ban(address, this.opts.banSeconds, 'request-rate', {
        requestsPerSecond: this.opts.requestsPerSecond,
        burst: this.opts.burst,
        transport: source.transport,
        port: source.remotePort,
      }, nowMs);
      this.opts.onDroppedBanned?.(source);
      return false;
    }
    return true;
  }
}
