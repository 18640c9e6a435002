/**
 * rtcedge's debug log of SIP messages, as seen from outside: every message
 * sent or received is one pino JSON line
 * `{"component":"transport","msg":"sip send"|"sip recv","transport","remote","local","startLine","callId","cseq","message"}`.
 */

/** One logged SIP message. */
export interface SipLogEntry {
  direction: 'send' | 'recv';
  /** `udp` | `tcp` | `tls` */
  transport: string;
  /** Peer address, `host:port` (IPv6 as `[::1]:port`). */
  remote: string;
  /** rtcedge's own address of the exchange, `host:port`. */
  local: string;
  startLine: string;
  /** Request method, or undefined for a response. */
  method?: string;
  /** Response status code, or undefined for a request. */
  status?: number;
  callId: string;
  /** CSeq header value, e.g. `1 INVITE`. */
  cseq: string;
  /** Method part of CSeq. */
  cseqMethod: string;
  /** Whole message text. */
  message: string;
  /** pino `time` (ms since epoch). */
  time: number;
  /** Which start of the server produced it (0 = first; see Rtcedge.restart). */
  run: number;
}

/** Criteria of sipLog(); every given field must match. */
export interface SipLogFilter {
  direction?: 'send' | 'recv';
  method?: string;
  status?: number;
  cseqMethod?: string;
  callId?: string;
  transport?: string;
  /** Exact `host:port`, or a list of them (any matches). */
  remote?: string | string[];
  run?: number;
}

/** Turns a parsed log line into a SipLogEntry, or undefined if it is no SIP message line. */
export function toSipLogEntry(line: Record<string, unknown>, run: number): SipLogEntry | undefined {
  if (line.msg !== 'sip send' && line.msg !== 'sip recv') return undefined;
  const str = (k: string): string => (typeof line[k] === 'string' ? (line[k] as string) : '');
  const startLine = str('startLine');
  const cseq = str('cseq');
  const m = /^SIP\/2\.0 (\d{3})/.exec(startLine);
  return {
    direction: line.msg === 'sip send' ? 'send' : 'recv',
    transport: str('transport').toLowerCase(),
    remote: str('remote'),
    local: str('local'),
    startLine,
    method: m ? undefined : startLine.split(' ')[0],
    status: m ? Number(m[1]) : undefined,
    callId: str('callId'),
    cseq,
    cseqMethod: cseq.trim().split(/\s+/)[1] ?? '',
    message: str('message'),
    time: typeof line.time === 'number' ? line.time : 0,
    run,
  };
}

/** True when the entry meets every criterion of the filter. */
export function matchesSipLog(e: SipLogEntry, f: SipLogFilter): boolean {
  if (f.direction !== undefined && e.direction !== f.direction) return false;
  if (f.method !== undefined && e.method !== f.method) return false;
  if (f.status !== undefined && e.status !== f.status) return false;
  if (f.cseqMethod !== undefined && e.cseqMethod !== f.cseqMethod) return false;
  if (f.callId !== undefined && e.callId !== f.callId) return false;
  if (f.transport !== undefined && e.transport !== f.transport) return false;
  if (f.run !== undefined && e.run !== f.run) return false;
  if (f.remote !== undefined) {
    const list = Array.isArray(f.remote) ? f.remote : [f.remote];
    if (!list.includes(e.remote)) return false;
  }
  return true;
}

const COMPACT: Record<string, string> = {
  'call-id': 'i',
  contact: 'm',
  from: 'f',
  to: 't',
  via: 'v',
  'content-length': 'l',
  'content-type': 'c',
};

/**
 * Values of a header field in a SIP message text (long or compact name,
 * case-insensitive), in order; folded lines are joined.
 */
export function headerValues(message: string, name: string): string[] {
  const head = message.split(/\r?\n\r?\n/)[0] ?? '';
  const lines = head.split(/\r?\n/).slice(1);
  const unfolded: string[] = [];
  for (const l of lines) {
    if (/^[ \t]/.test(l) && unfolded.length > 0) unfolded[unfolded.length - 1] += ' ' + l.trim();
    else unfolded.push(l);
  }
  const want = name.toLowerCase();
  const names = new Set([want, COMPACT[want] ?? want]);
  const out: string[] = [];
  for (const l of unfolded) {
    const i = l.indexOf(':');
    if (i > 0 && names.has(l.slice(0, i).trim().toLowerCase())) out.push(l.slice(i + 1).trim());
  }
  return out;
}

/** One line per entry (`run direction transport remote startLine [cseq]`), for failure messages. */
export function describeSipLog(entries: SipLogEntry[]): string {
  return entries
    .map((e) => `  #${e.run} ${e.direction} ${e.transport} ${e.remote} ${e.startLine} [${e.cseq}] ${e.callId}`)
    .join('\n');
}
