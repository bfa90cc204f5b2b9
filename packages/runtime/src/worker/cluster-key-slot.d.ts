// cluster-key-slot ships no types (ioredis, which depends on it, declares its own use the same way).
declare module 'cluster-key-slot' {
  /** Redis Cluster's slot (CRC16 of the key's hash tag or whole key, mod 16384). */
  export default function calculateSlot(key: string | Buffer): number;
}
