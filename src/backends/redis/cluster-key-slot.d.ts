/**
 * `cluster-key-slot` (the Redis Cluster CRC16 key hashing that ioredis and node-redis both use)
 * ships no types. This declares the one function the Redis backend uses.
 */
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0–16383) of `key`, honouring its `{hash tag}`. */
  export default function calculateSlot(key: string | Buffer): number;
}
