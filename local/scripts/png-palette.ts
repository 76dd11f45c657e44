/**
 * Turns a screenshot PNG (8-bit RGB or RGBA, as Chromium writes it) into an 8-bit palette PNG of at most 256
 * colours, so the README's picture stays small (a UI screenshot is mostly flat colours plus text edges). The
 * most used colours are kept exactly, so backgrounds, borders and brand colours do not shift; median cut
 * picks the rest (the anti-aliased edges). No dependency: Node's zlib does the compression.
 */
import { deflateSync, inflateSync } from 'node:zlib';

/** The input is a PNG this module does not read (not 8-bit RGB/RGBA, or interlaced). */
export class UnsupportedPngError extends Error {
  override readonly name = 'UnsupportedPngError';
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Colours kept exactly, by use, before median cut shares out the rest of the palette. */
const EXACT = 96;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The image's pixels as 0xRRGGBB, row by row (alpha dropped: screenshots are opaque). */
function decode(png: Buffer): { width: number; height: number; pixels: Uint32Array } {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new UnsupportedPngError('Not a PNG.');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('ascii', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, colour, , , interlace] = [body[8], body[9], body[10], body[11], body[12]];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0)
        throw new UnsupportedPngError('Only 8-bit, non-interlaced RGB or RGBA PNGs are read.');
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      data.push(body);
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = new Uint32Array(width * height);
  let previous = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const start = y * (stride + 1);
    const filter = raw[start];
    const line = Buffer.from(raw.subarray(start + 1, start + 1 + stride));
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? (line[i - channels] as number) : 0;
      const up = previous[i] as number;
      const upLeft = i >= channels ? (previous[i - channels] as number) : 0;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
        predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      line[i] = ((line[i] as number) + predictor) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const i = x * channels;
      pixels[y * width + x] = ((line[i] as number) << 16) | ((line[i + 1] as number) << 8) | (line[i + 2] as number);
    }
    previous = line;
  }
  return { width, height, pixels };
}

type Entry = { color: number; count: number };
const channel = (color: number, c: number) => (color >> (16 - 8 * c)) & 0xff;

/** Median cut over `entries` into `size` colours, each the use-weighted mean of its box. */
function medianCut(entries: Entry[], size: number): number[] {
  if (entries.length === 0 || size <= 0) return [];
  const boxes: Entry[][] = [entries];
  const spread = (box: Entry[]) => {
    let best = { channel: 0, range: -1 };
    for (let c = 0; c < 3; c++) {
      let low = 255;
      let high = 0;
      for (const { color } of box) {
        const v = channel(color, c);
        if (v < low) low = v;
        if (v > high) high = v;
      }
      if (high - low > best.range) best = { channel: c, range: high - low };
    }
    return best;
  };
  while (boxes.length < size) {
    let index = -1;
    let score = 0;
    boxes.forEach((box, i) => {
      if (box.length < 2) return;
      const weight = box.reduce((sum, e) => sum + e.count, 0);
      const s = spread(box).range * Math.sqrt(weight);
      if (s > score) {
        score = s;
        index = i;
      }
    });
    if (index === -1) break;
    const box = boxes[index] as Entry[];
    const { channel: c } = spread(box);
    box.sort((a, b) => channel(a.color, c) - channel(b.color, c));
    const half = box.reduce((sum, e) => sum + e.count, 0) / 2;
    let seen = 0;
    let cut = 1;
    for (; cut < box.length - 1; cut++) {
      seen += (box[cut - 1] as Entry).count;
      if (seen >= half) break;
    }
    boxes.splice(index, 1, box.slice(0, cut), box.slice(cut));
  }
  return boxes.map((box) => {
    const weight = box.reduce((sum, e) => sum + e.count, 0);
    const mean = [0, 1, 2].map((c) =>
      Math.round(box.reduce((sum, e) => sum + channel(e.color, c) * e.count, 0) / weight),
    );
    return ((mean[0] as number) << 16) | ((mean[1] as number) << 8) | (mean[2] as number);
  });
}

/**
 * Re-encodes a screenshot as a palette PNG.
 * @throws {UnsupportedPngError} a PNG that is not 8-bit RGB/RGBA or is interlaced
 * @example
 * await writeFile('docs/console.png', toPalettePng(await page.screenshot()));
 */
export function toPalettePng(png: Buffer): Buffer {
  const { width, height, pixels } = decode(png);
  const counts = new Map<number, number>();
  for (const color of pixels) counts.set(color, (counts.get(color) ?? 0) + 1);
  const byUse = [...counts].map(([color, count]) => ({ color, count })).sort((a, b) => b.count - a.count);
  const exact = byUse.slice(0, counts.size <= 256 ? 256 : EXACT).map((e) => e.color);
  const palette = [...exact, ...medianCut(byUse.slice(exact.length), 256 - exact.length)];
  const index = new Map<number, number>();
  for (const color of counts.keys()) {
    let best = 0;
    let bestDistance = Number.POSITIVE_INFINITY;
    palette.forEach((candidate, i) => {
      const dr = channel(color, 0) - channel(candidate, 0);
      const dg = channel(color, 1) - channel(candidate, 1);
      const db = channel(color, 2) - channel(candidate, 2);
      // Weighted as the eye weighs them (green most), the usual cheap approximation.
      const distance = 2 * dr * dr + 4 * dg * dg + 3 * db * db;
      if (distance < bestDistance) {
        bestDistance = distance;
        best = i;
      }
    });
    index.set(color, best);
  }
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0;
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = index.get(pixels[y * width + x] as number) as number;
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = 3;
  const plte = Buffer.alloc(palette.length * 3);
  palette.forEach((color, i) => {
    plte[i * 3] = channel(color, 0);
    plte[i * 3 + 1] = channel(color, 1);
    plte[i * 3 + 2] = channel(color, 2);
  });
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', header),
    chunk('PLTE', plte),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
