/**
 * How the location services of several SIP workers (one machine) or nodes (a
 * shared store) keep their in-memory bindings equal to the store's: the one
 * that committed a change names the AORs it changed, the others read those
 * AORs again from the store.
 */

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
}
