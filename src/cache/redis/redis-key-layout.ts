// Where the shared cache keeps what in Redis. Everything one step of the token protocol touches for
// a target (its token, lock, failure record and notification channel) shares one hash tag, so on a
// Redis Cluster it lives in one slot and a MULTI or script over it never fails with CROSSSLOT
// (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
// Counters and backoff records are single keys: each hashes on its whole name into a slot of its own.

/**
 * A target's cache key as a hash tag. Redis ends a tag at the first `}`, so braces (and `%`, to keep
 * the encoding one-to-one) are percent-encoded: two targets never share a tag by accident.
 */
function hashTag(key: string): string {
  return `{${key.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}}`;
}

export class RedisKeyLayout {
  /** The one channel of unsharded notifications (standalone, Sentinel, a cluster without SPUBLISH). */
  readonly updatesChannel: string;

  constructor(private readonly prefix: string) {
    this.updatesChannel = `${prefix}updates`;
  }

  token(key: string): string {
    return `${this.prefix}${hashTag(key)}:token`;
  }

  lock(key: string): string {
    return `${this.prefix}${hashTag(key)}:lock`;
  }

  failure(key: string): string {
    return `${this.prefix}${hashTag(key)}:failure`;
  }

  /** A target's own channel, for sharded pub/sub: in the slot of its keys. */
  targetChannel(key: string): string {
    return `${this.prefix}${hashTag(key)}:updates`;
  }

  /**
   * A delegated credential's grant: one hash (version, claim, encrypted refresh token), so the claim
   * and the token it guards live in one slot and fail over together.
   */
  grant(credentialId: string): string {
    return `${this.prefix}${hashTag(`grant|${credentialId}`)}:grant`;
  }

  /** A one-time record (a pending sign-in), its own slot. */
  once(key: string): string {
    return `${this.prefix}once:${key}`;
  }

  backoff(credentialId: string): string {
    return `${this.prefix}backoff:${credentialId}`;
  }

  counter(name: string): string {
    return `${this.prefix}counter:${name}`;
  }

  /** The health check's key; `tag` places it on a chosen cluster master. */
  health(tag: string): string {
    return `${this.prefix}health:{${tag}}`;
  }
}

/**
 * The cluster slot of a hash tag's content: CRC16-CCITT (XMODEM) mod 16384, as the cluster
 * specification's Appendix A defines it
 * (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#appendix-a-crc16-reference-implementation-in-ansi-c).
 */
export function clusterSlot(tagContent: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tagContent, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
