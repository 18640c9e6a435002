/**
 * Typed loader of the DTLS engine addon (native/src/dtls_server.cc, built
 * beside the data-plane addon as rtcedge_dtls.node). The engine runs
 * OpenSSL's DTLS 1.2 server (Node's own OpenSSL) over an in-memory datagram
 * BIO: the caller owns the UDP socket, feeds each datagram of a client
 * 5-tuple to `receive`, sends what comes back, and encrypts outgoing
 * application datagrams with `send` (RFC 7350, RFC 6347).
 */
import { dirname, join } from 'node:path';
import { NATIVE_ADDON_PATH, requireAddon } from './native-addon.js';

/** Limits and credentials of one engine. Times in ms, sizes in bytes. */
export interface DtlsEngineOptions {
  /** Certificate chain and private key, PEM (the TLS listener's). */
  cert: Buffer | string;
  key: Buffer | string;
  /** PSK identities and keys for PSK-only clients (RFC 4279 cipher suites); none: certificate suites only. */
  psk?: Array<{ identity: string; key: Buffer }>;
  /** Sessions (established + handshaking) at most; a ClientHello beyond it is dropped. Default 1000. */
  maxSessions?: number;
  /** Handshakes in progress (after the cookie exchange) at most. Default 100. */
  maxHandshakes?: number;
  /** An established session without a datagram for this long is closed (close_notify). Default 600000. */
  idleTimeoutMs?: number;
  /** A handshake not finished within this is abandoned. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Largest DTLS datagram the engine writes (handshake fragments), 256-65000. Default 1200. */
  mtu?: number;
}

/** What one received datagram produced. */
export interface DtlsReceiveResult {
  /** Datagrams to send back to the same 5-tuple (HelloVerifyRequest, handshake flights, alerts). */
  out: Buffer[];
  /** Decrypted application datagrams (STUN messages, ChannelData). */
  data: Buffer[];
  /**
   * 'established': the handshake just finished; 'closed': the session ended (alert, close_notify, failed handshake);
   * 'replaced': a new client on the same 5-tuple passed the cookie exchange and its handshake replaced the old
   * established session (RFC 6347 §4.2.8).
   */
  event: '' | 'established' | 'closed' | 'replaced';
}

/** Counters since the engine was created, plus current `sessions` and `handshaking`. */
export interface DtlsCounters {
  sessionsOpened: number;
  handshakesDone: number;
  handshakesFailed: number;
  handshakesTimedOut: number;
  idleClosed: number;
  /** HelloVerifyRequests sent (RFC 6347 §4.2.1). */
  cookiesSent: number;
  /** ClientHellos dropped at maxSessions/maxHandshakes. */
  dropLimit: number;
  /** Datagrams from unknown 5-tuples that are not a handshake record. */
  dropNotHandshake: number;
  recordsIn: number;
  recordsOut: number;
  /** Established sessions replaced by a new handshake from the same 5-tuple (RFC 6347 §4.2.8). */
  sessionsReplaced: number;
  sessions: number;
  handshaking: number;
  /** Last OpenSSL error text seen (for logs), '' if none. */
  lastError: string;
}

/** One DTLS server engine; `key` is any stable string naming the client 5-tuple. */
export interface DtlsEngine {
  receive(key: string, datagram: Buffer): DtlsReceiveResult;
  /** Encrypts one application datagram (1-16384 bytes); null without an established session. @throws TypeError on a bad size. */
  send(key: string, data: Buffer): Buffer[] | null;
  /** Retransmits handshake flights whose timer ran out, ends timed-out handshakes and idle sessions. Call every ~250 ms. */
  tick(): { out: Array<[string, Buffer]>; closed: string[] };
  /** Ends a session (close_notify when established); null if unknown. */
  closeSession(key: string): Buffer[] | null;
  stats(): DtlsCounters;
  /** Frees every session and the SSL context. Idempotent. */
  destroy(): void;
  /**
   * Replaces the certificate chain and key (PEM) for sessions made from now
   * on; open sessions keep theirs. A bad pair changes nothing.
   * @throws Error naming the OpenSSL error (unusable certificate or key, or a key that does not match).
   */
  setCertificate(cert: Buffer | string, key: Buffer | string): void;
}

/** The addon module. */
export interface DtlsAddon {
  /** @throws Error naming the OpenSSL error when the certificate, key or PSK list is unusable. */
  DtlsServer: new (opts: DtlsEngineOptions) => DtlsEngine;
  /** OpenSSL version text the addon runs on (Node's). */
  openssl: string;
}

/** Where node-gyp puts the DTLS addon, from src/turn/ or dist/turn/. */
export const DTLS_ADDON_PATH = join(dirname(NATIVE_ADDON_PATH), 'rtcedge_dtls.node');

let cached: { addon: DtlsAddon } | { error: string } | undefined;

/** Loads the DTLS addon once; returns it, or the reason it cannot load. */
export function loadDtlsAddon(): { addon: DtlsAddon } | { error: string } {
  cached ??= requireAddon<DtlsAddon>(DTLS_ADDON_PATH);
  return cached;
}
