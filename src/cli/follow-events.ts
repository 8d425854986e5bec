/**
 * A client of the HTTP admin's event stream (`GET /api/events`), for `hotline upgrade`'s progress: events as they
 * happen instead of a status poll every 100 ms. Bounded: a frame over MAX_FRAME characters ends the stream, and
 * connecting must succeed within CONNECT_TIMEOUT_MS (the caller then falls back to polling).
 */
import type { OpsEvent } from '../ops/event-stream.js';

export const MAX_FRAME = 256 * 1024;
export const CONNECT_TIMEOUT_MS = 2_000;

/**
 * Subscribe; resolves true once subscribed (events then go to `onEvent` until `signal` aborts or the stream ends),
 * false if the stream could not be opened.
 */
export async function followEvents(url: string, token: string, onEvent: (e: OpsEvent) => void, signal: AbortSignal): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.any([signal, AbortSignal.timeout(CONNECT_TIMEOUT_MS)]) });
  } catch {
    return false;
  }
  if (res.status !== 200 || !res.body) return false;
  void read(res.body, onEvent).catch(() => undefined);
  return true;
}

async function read(body: ReadableStream<Uint8Array>, onEvent: (e: OpsEvent) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end: number;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (!data) continue;
      try {
        const e = JSON.parse(data.slice(6)) as OpsEvent;
        if (e !== null && typeof e === 'object' && typeof e.type === 'string') onEvent(e);
      } catch {
        // Not an event of ours: skipped.
      }
    }
    if (buf.length > MAX_FRAME) return void reader.cancel();
  }
}
