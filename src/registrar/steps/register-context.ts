import type { Logger } from '../../log.js';
import type { SipHeader, SipRequest } from '../../sip/message.js';
import type { Authenticate } from '../../auth/request-authenticator.js';
import type { BindingRecord } from '../../store/index.js';
import type { ServerTransaction } from '../../transaction/server-transaction.js';
import type { Source } from '../../transport/types.js';
import type { LocalDomains } from '../local-domains.js';
import type { LocationService } from '../location-service.js';

/** Registrar settings, from `sip.registrar` in the config. */
export interface RegistrarOptions {
  domains: LocalDomains;
  location: LocationService;
  /** Establishes who sent the REGISTER (digest, client certificate...). */
  authenticate: Authenticate;
  /** Shortest accepted non-zero expiry, s; shorter → 423 Interval Too Brief with Min-Expires (§10.3 step 7). */
  minExpiresS: number;
  /** Longer requested expiries are lowered to this, s. */
  maxExpiresS: number;
  /** Expiry when neither the contact nor the request gives one, s. */
  defaultExpiresS: number;
  /** Bindings one AOR may hold; a REGISTER that would exceed it gets 403. */
  maxBindingsPerAor: number;
  /** Flow-Timer sent to Outbound UAs (RFC 5626 §4.4.1), s; default 120. */
  flowTimerS?: number;
  /** Key of temp-GRUUs (RFC 5627 §3.2, registrar/gruu.ts); without it no GRUUs are handed out. */
  tempGruuKey?: Buffer;
  logger: Logger;
  /**
   * Several nodes on one shared store: the Path value (RFC 3327 §4.3) naming
   * this node and the flow a REGISTER came over, put first in the binding's
   * path so other nodes route requests for it through this one; undefined
   * (or absent) when the binding needs none (UDP, a single node).
   */
  nodePath?: (source: Source) => string | undefined;
  /** The clock, unix time in s. */
  nowS?: () => number;
}

/** A final response a step answers with. */
export interface RegisterReply {
  status: number;
  reason: string;
  headers?: SipHeader[];
}

/** One change to the bindings of the AOR: a new or refreshed binding (`record`), or a removal. */
export interface BindingChange {
  contactUri: string;
  record?: BindingRecord;
}

/**
 * One REGISTER on its way through the registrar's steps (RFC 3261 §10.3):
 * the request, its transaction, the settings, the time it is processed at,
 * and what the steps found out (the AOR, the binding changes).
 */
export interface RegisterContext {
  readonly req: SipRequest;
  readonly st: ServerTransaction;
  readonly opts: RegistrarOptions;
  readonly log: Logger;
  /** When the REGISTER is processed, unix time in s. */
  readonly nowS: number;
  /** The AOR of the To header, `sip:user@domain` (set by address-of-record). */
  aor: string;
  /** Call-ID and CSeq number of the REGISTER (§10.3 step 6). */
  callId: string;
  cseq: number;
  /** The Contact header values. */
  contacts: readonly string[];
  /** The Expires header, s, when present. */
  headerExpiresS: number | undefined;
  /** Option tags of Supported, lowercase. */
  supported: readonly string[];
  /** The AOR's unexpired bindings before this REGISTER (set by current-bindings). */
  existing: BindingRecord[];
  /** The changes to the AOR's bindings (set by contact-bindings). */
  changes: BindingChange[];
  /** True when a binding used SIP Outbound (RFC 5626 §6). */
  outboundUsed: boolean;
}

/** A fresh context for a REGISTER processed at unix time `nowS`, before any step ran. */
export function newRegisterContext(req: SipRequest, st: ServerTransaction, opts: RegistrarOptions, log: Logger, nowS: number): RegisterContext {
  return { req, st, opts, log, nowS, aor: '', callId: '', cseq: 0, contacts: [], headerExpiresS: undefined, supported: [], existing: [], changes: [], outboundUsed: false };
}

/**
 * One step of the registrar (RFC 3261 §10.3): undefined to go on, or the
 * final response to answer with (the last step always answers).
 */
export type RegisterStep = (ctx: RegisterContext) => RegisterReply | undefined | Promise<RegisterReply | undefined>;
