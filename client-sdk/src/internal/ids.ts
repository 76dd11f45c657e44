/** Client ids for requests: unique per client without Node's crypto module (browsers, React Native). */
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random string of `length` characters of [a-z0-9]; `crypto.getRandomValues` where the platform has it. */
export function randomId(length = 12): string {
  const bytes = new Uint8Array(length);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length];
  return id;
}
