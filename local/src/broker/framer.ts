/**
 * Splits a byte stream into whole MQTT control packets before `mqtt-packet` parses them, for two reasons:
 * - a packet's size is known from its fixed header, so an oversized one is refused before its body is
 *   buffered (mqtt-packet would buffer up to MQTT's 256 MB);
 * - the parser sees one packet at a time, so after CONNECT the connection can switch to a parser of the
 *   negotiated protocol version before the next packet is parsed.
 */

/** What {@link PacketFramer.push} found. */
export type FrameResult =
  | { kind: 'frames'; frames: Buffer[] }
  | { kind: 'too-large'; size: number }
  | { kind: 'malformed'; why: string };

/** Accumulates bytes and cuts them into whole packets. */
export class PacketFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxRemainingLength: number) {}

  /** Feeds bytes; returns the packets completed by them (possibly none). */
  push(chunk: Buffer): FrameResult {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      const header = this.readHeader();
      if (header === undefined) break;
      if ('malformed' in header) return { kind: 'malformed', why: header.malformed };
      if (header.remaining > this.maxRemainingLength) return { kind: 'too-large', size: header.remaining };
      const total = header.headerBytes + header.remaining;
      if (this.buffered < total) break;
      const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
      frames.push(all.subarray(0, total));
      const rest = all.subarray(total);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
    return { kind: 'frames', frames };
  }

  /** Decodes the fixed header's remaining length, or `undefined` when more bytes are needed. */
  private readHeader(): { headerBytes: number; remaining: number } | { malformed: string } | undefined {
    if (this.buffered < 2) return undefined;
    let multiplier = 1;
    let value = 0;
    let index = 1;
    for (;;) {
      const byte = this.byteAt(index);
      if (byte === undefined) return undefined;
      value += (byte & 0x7f) * multiplier;
      if ((byte & 0x80) === 0) return { headerBytes: index + 1, remaining: value };
      multiplier *= 128;
      index++;
      // The remaining length is at most four bytes (MQTT 3.1.1 §2.2.3, MQTT 5 §1.5.5).
      if (index > 4) return { malformed: 'remaining length longer than four bytes' };
    }
  }

  private byteAt(index: number): number | undefined {
    let offset = index;
    for (const chunk of this.chunks) {
      if (offset < chunk.length) return chunk[offset];
      offset -= chunk.length;
    }
    return undefined;
  }
}
