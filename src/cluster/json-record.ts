/**
 * The first checks every JSON record read from a NATS bucket gets (session records, presence records): its size, then
 * strict UTF-8 JSON, then a plain object. Anything else with access to NATS may have written the bytes, so each step
 * refuses through the caller's `refuse`, which throws the caller's own code; the fields are the caller's to check.
 */
const decoder = new TextDecoder('utf-8', { fatal: true });

export function readJsonObject(bytes: Uint8Array, maxBytes: number, refuse: (why: string) => never): Record<string, unknown> {
  if (bytes.byteLength > maxBytes) refuse(`${bytes.byteLength} bytes, over the ${maxBytes} allowed`);
  let w: unknown;
  try {
    w = JSON.parse(decoder.decode(bytes));
  } catch {
    refuse('not UTF-8 JSON');
  }
  if (typeof w !== 'object' || w === null || Array.isArray(w)) refuse('not an object');
  return w as Record<string, unknown>;
}
