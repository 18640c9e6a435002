/**
 * How the location services of several SIP workers (one machine) or nodes (a
 * shared store) keep their in-memory bindings equal to the store's: the one
 * that committed a change either carries the change itself to the others
 * (workers of one machine: {@link BindingReplication.announceChanges}), or
 * names the AORs it changed and the others read those AORs again from the
 * store ({@link BindingReplication.announce}).
 */
import type { BindingChange } from '../store/index.js';

/** A channel between location services that share one {@link BindingStore}. */
export interface BindingReplication {
  /**
   * Tell every other location service that the bindings of `aors` changed in
   * the store (called after the commit). Resolves once each of them has read
   * those AORs again, or after the implementation's bound on waiting (so a
   * registrar answers 200 only when the binding is visible everywhere, or
   * when waiting longer would not help); never rejects.
   */
  announce(aors: readonly string[]): Promise<void>;
  /**
   * Register the one listener for AORs another location service changed; it
   * returns once the AORs are read again (a promise when the store is remote).
   */
  onRemoteChange(listener: (aors: readonly string[]) => void | Promise<void>): void;
  /**
   * When present, used instead of {@link announce}: hand the committed changes
   * themselves (in commit order) to every other location service, which apply
   * them to memory without reading the store. Same promise as {@link announce}:
   * resolves once each has applied them, or after the bound; never rejects.
   */
  announceChanges?(changes: readonly BindingChange[]): Promise<void>;
  /** Register the one listener for changes another location service committed and carried (see {@link announceChanges}). */
  onRemoteChanges?(listener: (changes: readonly BindingChange[]) => void): void;
}
