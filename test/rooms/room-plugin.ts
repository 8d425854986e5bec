/**
 * A plugin that drives the rooms API from its clients' messages, for the rooms tests (in-process and upgrade):
 *   join:<room>  leave:<room>  say:<room>:<text> (every member)  sayx:<room>:<text> (all but the sender)
 *   rooms (JSON of ctx.rooms(conn))  members:<room> (JSON of await ctx.members(room), sorted)  id
 *   direct:<id>:<text>  count:<room>:<n> (joins n rooms <room>0..)
 * A refused call replies `err:<code>`; onClose tells the rooms it was in `left:<id>:<rooms>`.
 */
export const roomPlugin = (tag: string): string => `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'rooms', version: '${tag}', api: 1,
  async onMessage(conn, data, ctx) {
    const text = String(data);
    const [cmd, a = '', ...rest] = text.split(':');
    const b = rest.join(':');
    try {
      if (cmd === 'join') conn.send('joined:' + conn.join(a));
      else if (cmd === 'leave') conn.send('left:' + conn.leave(a));
      else if (cmd === 'say') ctx.to(a).send('${tag}|' + b);
      else if (cmd === 'sayx') conn.send('sent:' + ctx.to(a).send(b, { except: conn }));
      else if (cmd === 'rooms') conn.send('rooms:' + JSON.stringify(ctx.rooms(conn)));
      else if (cmd === 'members') conn.send('members:' + JSON.stringify((await ctx.members(a)).sort()));
      else if (cmd === 'id') conn.send('id:' + conn.id);
      else if (cmd === 'direct') conn.send('direct:' + ctx.toConnection(a).send(b));
      else if (cmd === 'count') { for (let i = 0; i < Number(b); i++) conn.join(a + i); conn.send('ok'); }
    } catch (err) {
      conn.send('err:' + (err as { code?: string }).code);
    }
  },
  onClose(conn, _info, ctx) {
    const rooms = ctx.rooms(conn);
    for (const r of rooms) ctx.to(r).send('left:' + conn.id + ':' + rooms.join(','), { except: conn });
  },
});
`;
