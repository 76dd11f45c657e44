/**
 * API Gateway closes a connection with 1009 when a single client frame is larger than 32 KB, even if the
 * whole message is within the 128 KB message limit. `ws` only knows a message limit (`maxPayload`), so
 * the gateway reads the frame headers itself: this parser is fed the raw socket bytes (registered before
 * `ws`'s own listener, so it sees a header before `ws` delivers that frame) and reports the first data
 * frame whose payload length exceeds the limit. It only reads headers and skips payloads, so it costs
 * next to nothing.
 *
 * Approximation: the length checked is the payload length on the wire. API Gateway does not negotiate
 * permessage-deflate and neither does the emulator, so wire length equals message length.
 */

const MAX_HEADER_BYTES = 14;

/** Tracks frame boundaries of a client-to-server byte stream. */
export class FrameGuard {
  private pending: Buffer = Buffer.alloc(0);
  private skip = 0;
  private tripped = false;

  /**
   * @param maxFrameBytes Largest allowed payload of one data or continuation frame.
   * @param onOversized Called once, with the offending payload length, when a frame is too large.
   */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly onOversized: (payloadLength: number) => void,
  ) {}

  /** Feeds the next chunk read from the socket. */
  push(chunk: Buffer): void {
    let offset = 0;
    while (!this.tripped && offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      const take = chunk.subarray(offset, offset + MAX_HEADER_BYTES - this.pending.length);
      const header = this.pending.length > 0 ? Buffer.concat([this.pending, take]) : take;
      const parsed = parseHeader(header);
      if (parsed === undefined) {
        // A header split across reads: keep its start for the next chunk.
        this.pending = Buffer.from(header);
        offset += take.length;
        continue;
      }
      offset += parsed.headerLength - this.pending.length;
      this.pending = Buffer.alloc(0);
      const isDataFrame = parsed.opcode < 0x08;
      if (isDataFrame && parsed.payloadLength > this.maxFrameBytes) {
        this.tripped = true;
        this.onOversized(parsed.payloadLength);
        return;
      }
      this.skip = parsed.payloadLength;
    }
  }
}

function parseHeader(header: Buffer): { opcode: number; payloadLength: number; headerLength: number } | undefined {
  if (header.length < 2) return undefined;
  const b0 = header[0] as number;
  const b1 = header[1] as number;
  const masked = (b1 & 0x80) !== 0;
  const length7 = b1 & 0x7f;
  const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const headerLength = 2 + extended + (masked ? 4 : 0);
  if (header.length < headerLength) return undefined;
  let payloadLength = length7;
  if (length7 === 126) payloadLength = header.readUInt16BE(2);
  // Beyond 2^53 is not a real frame; it trips the limit all the same.
  if (length7 === 127) payloadLength = Number(header.readBigUInt64BE(2));
  return { opcode: b0 & 0x0f, payloadLength, headerLength };
}
