/** The parts of the npm package `stun` (an independent STUN client, no bundled types) that the TURN interop tests use. */
declare module 'stun' {
  /** A decoded STUN response. */
  interface StunResponse {
    /** XOR-MAPPED-ADDRESS (RFC 8489 §14.2). */
    getXorAddress(): { family: string; address: string; port: number };
  }
  /** Sends a Binding request to "host:port" and resolves with the response. */
  function request(url: string, options?: Record<string, unknown>): Promise<StunResponse>;
  const stun: { request: typeof request };
  export default stun;
}
