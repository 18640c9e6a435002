import type { BindingRecord } from '../store/index.js';
import type { Destination, TransportName } from '../transport/types.js';

/**
 * One target of the target set (RFC 3261 §16.5): the URI the copy of the
 * request goes to, the binding it came from (its Path and flow), and the flow
 * a Route's flow token named (RFC 5626 §5.3).
 */
export interface Target {
  uri: string;
  binding?: BindingRecord;
  flow?: Destination;
}

/**
 * The target set of an AOR (RFC 3261 §16.5) as groups to try in order:
 * bindings with the highest q first, equal q values in parallel, lower q only
 * when every branch of the group before failed (§16.6, sequential by q).
 *
 * Outbound bindings (RFC 5626 §6: `+sip.instance` and `reg-id`) of one
 * instance count once: the most recently refreshed one whose flow is still
 * open, so a request fails over to the UA's other flow when one dies (§5.3).
 *
 * @param alive true when a binding's flow can still carry requests.
 * @param judgedHere false for a binding whose flow another hop holds (its Path leads
 *   through another node or an edge proxy): that hop judges its flow, so it is kept.
 */
export function targetGroups(bindings: BindingRecord[], alive: (ref: Destination) => boolean, judgedHere: (b: BindingRecord) => boolean = () => true): BindingRecord[][] {
  const chosen: BindingRecord[] = [];
  const byInstance = new Map<string, BindingRecord>();
  for (const b of bindings) {
    const ref = b.source ? { transport: b.source.transport as TransportName, address: b.source.address, port: b.source.port } : undefined;
    if (b.instance && b.regId !== null) {
      if (ref && judgedHere(b) && !alive(ref)) continue;
      const prev = byInstance.get(b.instance);
      if (!prev || b.updatedAt > prev.updatedAt) byInstance.set(b.instance, b);
      continue;
    }
    chosen.push(b);
  }
  chosen.push(...byInstance.values());
  chosen.sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt);
  const groups: BindingRecord[][] = [];
  for (const b of chosen) {
    const last = groups[groups.length - 1];
    if (last && (last[0].q ?? 1) === (b.q ?? 1)) last.push(b);
    else groups.push([b]);
  }
  return groups;
}
