/**
 * The flows (RFC 5626 §3: TCP, TLS, WebSocket connections) held by the other
 * SIP workers of this instance, as they announced them over the mesh: what a
 * worker needs to send on them (through their worker) and to find one by the
 * remote address (`hasFlowTo`, a flow token, a registered contact).
 */
import type { PeerCertificateLike } from '../auth/domain-certificate.js';
import type { Source, TransportName } from './types.js';

/** A flow as its worker announces it. */
export interface FlowAnnouncement {
  id: string;
  transport: TransportName;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/** A flow of another worker. */
export interface RemoteFlow extends FlowAnnouncement {
  /** The worker that holds the connection. */
  worker: number;
}

/** Most remote flows recorded (the open connections of the other workers); beyond, announcements are refused. */
export const MAX_REMOTE_FLOWS = 1_000_000;

/** The table of the other workers' flows, by id and by "transport|address|port" of the remote end. */
export class RemoteFlows {
  private readonly byId = new Map<string, RemoteFlow>();
  private readonly byRemote = new Map<string, string>();

  constructor(private readonly maxFlows = MAX_REMOTE_FLOWS) {}

  /** Record a flow worker `worker` opened; false (not recorded) when the table is full. */
  add(worker: number, f: FlowAnnouncement): boolean {
    if (this.byId.size >= this.maxFlows && !this.byId.has(f.id)) return false;
    this.byId.set(f.id, { ...f, worker });
    this.byRemote.set(remoteKey(f.transport, f.remoteAddress, f.remotePort), f.id);
    return true;
  }

  /** The flow with this id (a flow token or binding names it), if recorded. */
  get(id: string): RemoteFlow | undefined {
    return this.byId.get(id);
  }

  /** The flow of another worker to that remote end (address without brackets), if one is open. */
  find(transport: TransportName, address: string, port: number): RemoteFlow | undefined {
    const id = this.byRemote.get(remoteKey(transport, address, port));
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** Forget a flow its worker closed; no-op when unknown. */
  delete(id: string): void {
    const f = this.byId.get(id);
    if (!f) return;
    this.byId.delete(id);
    const key = remoteKey(f.transport, f.remoteAddress, f.remotePort);
    if (this.byRemote.get(key) === id) this.byRemote.delete(key);
  }

  /** Forget every flow of `worker` (it went away); returns their ids. */
  dropWorker(worker: number): string[] {
    const ids = [...this.byId.values()].filter((f) => f.worker === worker).map((f) => f.id);
    for (const id of ids) this.delete(id);
    return ids;
  }

  /** Flows recorded (at most `maxFlows`). */
  get size(): number {
    return this.byId.size;
  }
}

function remoteKey(transport: TransportName, address: string, port: number): string {
  return `${transport}|${address}|${port}`;
}

/**
 * A {@link Source} as it crosses the mesh: plain data only. The peer
 * certificate keeps the fields the domain check reads (subject and
 * subjectAltName, RFC 5922 §7).
 */
export function meshSource(source: Source): Source {
  const cert = source.tlsPeerCertificate;
  if (!cert && !source.tlsIdentities && source.flowId === undefined) return source;
  const out: Source = { ...source };
  if (cert) out.tlsPeerCertificate = plainCertificate(cert);
  return out;
}

function plainCertificate(cert: PeerCertificateLike): PeerCertificateLike {
  if ('subjectAltName' in cert && typeof (cert as { toLegacyObject?: unknown }).toLegacyObject === 'function') {
    // X509Certificate: its subject is a string of "CN=..." lines, which the domain check reads as well.
    return { subject: cert.subject as never, subjectaltname: cert.subjectAltName ?? '' };
  }
  const c = cert as { subject: unknown; subjectaltname?: string };
  return { subject: c.subject as never, subjectaltname: c.subjectaltname as string };
}
