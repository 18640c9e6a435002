/**
 * The order in which SRV targets are tried (RFC 2782, "Usage rules"): lowest
 * priority first; inside one priority, a weighted random order in which a
 * record of weight w is picked first with probability w / (sum of weights),
 * records of weight 0 having a very small chance unless all weigh 0.
 */
import type { SrvRecord } from './resolver.js';

/**
 * Returns the records in the order to try them (a new array; the input is not
 * changed). `random` gives numbers in [0, 1) (default Math.random; tests pass a
 * seeded one). A lone "." target (`target === ''`, RFC 2782: the service is
 * decidedly not available) yields [].
 */
export function orderSrvRecords(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  if (records.length === 1 && records[0]!.target === '') return [];
  const byPriority = new Map<number, SrvRecord[]>();
  for (const r of records) {
    if (r.target === '') continue;
    const group = byPriority.get(r.priority);
    if (group) group.push(r);
    else byPriority.set(r.priority, [r]);
  }
  const out: SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // RFC 2782: zero-weight records first in the list, then the running-sum pick.
    const left = byPriority.get(priority)!.slice().sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((s, r) => s + r.weight, 0);
      const pick = Math.floor(random() * (total + 1)); // uniform in [0, total]
      let running = 0;
      let chosen = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]!.weight;
        if (running >= pick) {
          chosen = i;
          break;
        }
      }
      out.push(left.splice(chosen, 1)[0]!);
    }
  }
  return out;
}
