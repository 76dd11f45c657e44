/**
 * What SQS checks and computes for one message it is sent: the allowed body characters, the message
 * attributes (names, data types, values), the message's size (body plus every attribute's name, type and
 * value, as SQS counts it against its size limit) and the MD5 digests it answers with (`MD5OfMessageBody`,
 * and `MD5OfMessageAttributes` with the length-prefixed encoding of the developer guide's "Calculating the
 * MD5 message digest for message attributes").
 */
import { createHash } from 'node:crypto';

/** A message attribute as the SQS JSON protocol carries it (`BinaryValue` base64 on the wire). */
export interface SqsAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

/** A refusal of one message's content: the SQS error code and its message text. */
export class SqsMessageError extends Error {
  override readonly name = 'SqsMessageError';
  constructor(
    /** `InvalidMessageContents` or `InvalidParameterValue`, as SQS names them. */
    readonly code: 'InvalidMessageContents' | 'InvalidParameterValue' | 'MissingParameter',
    message: string,
  ) {
    super(message);
  }
}

/** At most this many attributes per message (SQS quota). */
export const SQS_MAX_MESSAGE_ATTRIBUTES = 10;

/** The characters SQS allows in a body and in string attribute values (XML 1.0's `Char`). */
const ALLOWED = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;
const FIRST_INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE = /^(String|Number|Binary)(\.[^\s]{1,255})?$/;

/** `#x0`-style name of the first character SQS refuses, or undefined when the text is allowed. */
export function invalidCharacter(text: string): string | undefined {
  if (ALLOWED.test(text)) return undefined;
  const bad = FIRST_INVALID.exec(text)?.[0] ?? '';
  return `#x${(bad.codePointAt(0) ?? 0).toString(16).toUpperCase()}`;
}

/** Checks a message body as SQS does (non-empty, allowed characters). @throws {SqsMessageError} */
export function checkBody(body: unknown): string {
  if (typeof body !== 'string' || body.length === 0)
    throw new SqsMessageError('MissingParameter', 'The request must contain the parameter MessageBody.');
  const bad = invalidCharacter(body);
  if (bad !== undefined)
    throw new SqsMessageError(
      'InvalidMessageContents',
      `Invalid binary character '${bad}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF`,
    );
  return body;
}

/**
 * Checks message attributes as SQS does: at most 10; names of `[A-Za-z0-9_.-]`, up to 256 characters, no
 * `AWS.` / `Amazon.` prefix, no leading, trailing or doubled `.`; a data type `String`, `Number` or `Binary`
 * (optionally `.custom`); a non-empty value of the type's kind (a number for `Number`).
 * @throws {SqsMessageError}
 */
export function checkAttributes(value: unknown): Record<string, SqsAttributeValue> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new SqsMessageError('InvalidParameterValue', 'MessageAttributes must be a map of attribute values.');
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > SQS_MAX_MESSAGE_ATTRIBUTES)
    throw new SqsMessageError(
      'InvalidParameterValue',
      `Number of message attributes [${entries.length}] exceeds the allowed maximum [${SQS_MAX_MESSAGE_ATTRIBUTES}].`,
    );
  const out: Record<string, SqsAttributeValue> = {};
  for (const [name, raw] of entries) {
    if (
      !ATTRIBUTE_NAME.test(name) ||
      /^(aws|amazon)\./i.test(name) ||
      name.startsWith('.') ||
      name.endsWith('.') ||
      name.includes('..')
    )
      throw new SqsMessageError('InvalidParameterValue', `Message (user) attribute name '${name}' is invalid.`);
    const attribute = raw as Partial<SqsAttributeValue> | null;
    const dataType = attribute?.DataType;
    if (typeof dataType !== 'string' || !DATA_TYPE.test(dataType))
      throw new SqsMessageError(
        'InvalidParameterValue',
        `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
      );
    const kind = dataType.split('.')[0];
    if (kind === 'Binary') {
      const binary = attribute?.BinaryValue;
      if (typeof binary !== 'string' || binary.length === 0)
        throw new SqsMessageError(
          'InvalidParameterValue',
          `The message attribute '${name}' with type 'Binary' must use field 'Binary'.`,
        );
      out[name] = { DataType: dataType, BinaryValue: binary };
      continue;
    }
    const text = attribute?.StringValue;
    if (typeof text !== 'string' || text.length === 0)
      throw new SqsMessageError(
        'InvalidParameterValue',
        `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${kind}'.`,
      );
    if (kind === 'Number' && !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text))
      throw new SqsMessageError(
        'InvalidParameterValue',
        `Can't cast the value of message (user) attribute '${name}' to a number.`,
      );
    const bad = invalidCharacter(text);
    if (bad !== undefined)
      throw new SqsMessageError(
        'InvalidParameterValue',
        `Message (user) attribute '${name}' value contains invalid binary character '${bad}'.`,
      );
    out[name] = { DataType: dataType, StringValue: text };
  }
  return out;
}

function attributeValueBytes(attribute: SqsAttributeValue): Buffer {
  return attribute.BinaryValue !== undefined
    ? Buffer.from(attribute.BinaryValue, 'base64')
    : Buffer.from(attribute.StringValue ?? '', 'utf8');
}

/** The size SQS counts against its message size limit: the body and each attribute's name, type and value. */
export function messageSize(body: string, attributes: Record<string, SqsAttributeValue>): number {
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, attribute] of Object.entries(attributes)) {
    size += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(attribute.DataType, 'utf8');
    size += attributeValueBytes(attribute).length;
  }
  return size;
}

/** Hex MD5 of the body's UTF-8 bytes: `MD5OfMessageBody`, which the SDK checks. */
export function md5OfBody(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

function lengthPrefixed(bytes: Buffer): Buffer[] {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return [length, bytes];
}

/**
 * `MD5OfMessageAttributes`: over the attributes sorted by name, each encoded as name, data type (both 4-byte
 * big-endian length + UTF-8), a transport byte (1 string, 2 binary) and the length-prefixed value. Undefined
 * without attributes (SQS then omits the field).
 */
export function md5OfAttributes(attributes: Record<string, SqsAttributeValue>): string | undefined {
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const parts: Buffer[] = [];
  for (const name of names) {
    const attribute = attributes[name] as SqsAttributeValue;
    parts.push(...lengthPrefixed(Buffer.from(name, 'utf8')));
    parts.push(...lengthPrefixed(Buffer.from(attribute.DataType, 'utf8')));
    parts.push(Buffer.from([attribute.BinaryValue !== undefined ? 2 : 1]));
    parts.push(...lengthPrefixed(attributeValueBytes(attribute)));
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}
