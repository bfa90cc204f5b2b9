/**
 * Keeps the first `cap` bytes of a stream and says when more arrived; also the last `tailBytes`
 * seen, for reading an interpreter's dying words after a flood.
 */
export class CappedOutput {
  readonly #cap: number;
  readonly #tailBytes: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  #tail: Buffer = Buffer.alloc(0);
  truncated = false;

  constructor(cap: number, tailBytes = 8192) {
    this.#cap = cap;
    this.#tailBytes = tailBytes;
  }

  /** Adds a chunk; returns false once the stream went over its cap. */
  push(chunk: Buffer): boolean {
    const room = this.#cap - this.#kept;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.#chunks.push(part);
      this.#kept += part.length;
    }
    if (chunk.length > room) this.truncated = true;
    const joined = Buffer.concat([this.#tail, chunk]);
    this.#tail = joined.length > this.#tailBytes ? joined.subarray(joined.length - this.#tailBytes) : joined;
    return !this.truncated;
  }

  /** What was kept. */
  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  /** What was kept, decoded as UTF-8 (a character cut at the cap becomes U+FFFD). */
  text(): string {
    return this.bytes().toString('utf8');
  }

  /** The last bytes received, decoded. */
  tail(): string {
    return this.#tail.toString('utf8');
  }
}
