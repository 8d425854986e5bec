/**
 * The room members of C1 and C2: a bare socket with a minimal WebSocket client (the handshake, unmasked server frames,
 * masked pongs and short text frames), not the `ws` client: on the two cores the servers share, ws' client costs
 * several times what the servers spend per delivery, and the figure would measure the members. `mode: 'sio'` speaks
 * socket.io 4 on top (engine.io v4: open `0{…}`, connect `40`, ping `2` answered `3`, events `42[…]`), so every server
 * under test faces the same client code.
 */
import net from 'node:net';

export type MemberMode = 'ws' | 'sio';

const SIO_EVENT = '42["m","';

/** A short text frame from a client: masked with a zero key (a valid key that leaves the bytes as they are). */
function clientText(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/**
 * Connect one member to `url`; `onMessage` gets each room message's text (for socket.io, the event's payload). Resolves
 * once it is a member: after the upgrade (ws) or socket.io's connect (sio). The socket is pushed to `sockets`.
 */
export function openMember(url: URL, mode: MemberMode, localAddress: string | undefined, sockets: net.Socket[], onMessage: (text: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}) });
    sockets.push(socket);
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    let buf: Buffer | undefined;
    let upgraded = false;
    const onText = (text: string) => {
      if (mode === 'ws') onMessage(text);
      else if (text.startsWith(SIO_EVENT)) onMessage(text.slice(SIO_EVENT.length));
      else if (text === '2') socket.write(clientText('3'));
      else if (text[0] === '0') socket.write(clientText('40'));
      else if (text.startsWith('40')) resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString('latin1').includes(' 101')) return reject(new Error(`handshake refused: ${buf.subarray(0, 40).toString('latin1')}`));
        upgraded = true;
        buf = buf.subarray(end + 4);
        if (mode === 'ws') resolve();
      }
      let off = 0;
      while (buf.length - off >= 2) {
        const opcode = buf[off]! & 0x0f;
        let len = buf[off + 1]! & 0x7f;
        let head = 2;
        if (len === 126) {
          if (buf.length - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          head = 4;
        } else if (len === 127) {
          if (buf.length - off < 10) break;
          len = Number(buf.readBigUInt64BE(off + 2));
          head = 10;
        }
        if (buf.length - off < head + len) break;
        const start = off + head;
        if (opcode === 1) onText(buf.toString('latin1', start, start + len));
        else if (opcode === 9) socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len, 0, 0, 0, 0]), buf.subarray(start, start + len)]));
        off = start + len;
      }
      buf = off === buf.length ? undefined : buf.subarray(off);
    });
  });
}
