// The hotline dashboard: plain JavaScript, no build step, no dependency. It reads the JSON API of the listener that
// served it (status once a second, the event stream for swaps as they happen) with the bearer token typed above,
// kept in sessionStorage only. Every value from the server is written with textContent, never as HTML.
/* global document, window, fetch, setTimeout, clearTimeout, AbortController, TextDecoderStream, sessionStorage, URLSearchParams, location, history, Node */
'use strict';

const POLL_MS = 1000;
const HISTORY = 300; // chart points: five minutes at one a second
const MAX_EVENTS = 60;
const PHASES = ['building', 'loading', 'preparing', 'suspending', 'migrating', 'switching', 'disposing'];
const PHASE_COLORS = { building: '#4fb3ff', loading: '#7c8cff', preparing: '#b07cff', suspending: '#f5b642', migrating: '#ff8f5f', switching: '#3ecf8e', disposing: '#5f7384' };

const $ = (id) => document.getElementById(id);
const state = { token: '', points: [], last: undefined, swaps: new Set(), timer: 0, stream: undefined, connected: false };

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'style') Object.assign(e.style, v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, method = 'GET', body) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${state.token}`, ...(body && { 'content-type': 'application/json' }) },
    body: body && JSON.stringify(body),
    cache: 'no-store',
  });
  let json;
  try {
    json = await res.json();
  } catch {
    throw new Error(`HTTP ${res.status}`);
  }
  if (!json.ok) {
    const err = new Error(json.error ? `${json.error.code}: ${json.error.message}` : `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return json.result;
}

// ── polling: numbers, chart, versions, timeline ─────────────────────────────────────────────────────────────────

async function poll() {
  clearTimeout(state.timer);
  try {
    const s = await api('/api/status');
    setConnected(true);
    render(s);
  } catch (err) {
    setConnected(false, err);
  }
  if (state.token) state.timer = setTimeout(poll, POLL_MS);
}

function setConnected(ok, err) {
  state.connected = ok;
  for (const id of ['reload', 'force', 'rollback']) $(id).disabled = !ok;
  $('locked').style.display = ok ? 'none' : '';
  if (!ok && err) {
    $('state').textContent = err.status === 401 || err.status === 403 ? 'token refused' : 'unreachable';
    $('state').className = 'pill bad';
    if (err.status === 401 || err.status === 403) $('locked').textContent = `${err.message}`;
  }
}

function render(s) {
  const p = s.plugin;
  $('plugin').textContent = p ? `${p.name}@${p.version} · ${p.hash}` : 'no plugin';
  $('plugin').className = 'pill ok';
  const sup = s.supervisor;
  const serving = s.state === 'running' && (!sup || sup.state === 'running');
  const stateText = sup && sup.state !== 'running' ? sup.state : s.state === 'running' ? (s.phase === 'idle' ? 'serving' : `swap: ${s.phase}`) : s.state;
  $('state').textContent = stateText;
  $('state').className = `pill ${serving ? (s.phase === 'idle' ? 'ok' : 'warn') : 'warn'}`;
  $('meta').textContent = `pid ${s.pid}${sup ? ` · supervisor ${sup.pid}` : ''} · up ${duration(s.uptimeMs)}`;

  const now = Date.now();
  const prev = state.last;
  let inRate = 0;
  let outRate = 0;
  // A new worker (an upgrade, a restart) restarts its own counters: a rate is only taken within one process.
  if (prev && prev.pid === s.pid && now > prev.at) {
    inRate = Math.max(0, ((s.messages.in - prev.in) * 1000) / (now - prev.at));
    outRate = Math.max(0, ((s.messages.out - prev.out) * 1000) / (now - prev.at));
  }
  state.last = { pid: s.pid, at: now, in: s.messages.in, out: s.messages.out };
  state.points.push({ at: now, conn: s.connections, inRate, outRate });
  if (state.points.length > HISTORY) state.points.shift();

  const errors = s.versions.reduce((a, v) => a + v.errors, 0);
  $('s-conn').textContent = fmt(s.connections);
  $('s-conn-sub').textContent = s.sessions !== undefined ? `${s.sessions} sessions, ${s.sessionsDetached ?? 0} detached` : (s.listen || []).map((l) => l.url).join(' ');
  $('s-in').textContent = fmt(inRate, 1);
  $('s-in-sub').textContent = `${fmt(s.messages.in)} total`;
  $('s-out').textContent = fmt(outRate, 1);
  $('s-out-sub').textContent = `${fmt(s.messages.out)} total`;
  $('s-err').textContent = fmt(errors);
  $('s-err-sub').textContent = `${s.handlersAbandoned} abandoned · ${s.messages.dropped} dropped`;

  renderVersions(s.versions, p);
  renderTimeline(s.swaps);
  renderUpgrades(sup ? sup.upgrades : undefined);
  drawChart();
}

function renderVersions(versions, current) {
  const body = $('versions');
  body.replaceChildren();
  for (const v of [...versions].reverse()) {
    const rate = v.messages > 0 ? v.errors / v.messages : 0;
    const isCurrent = current && current.seq === v.seq;
    body.append(
      el('tr', { 'data-seq': String(v.seq) },
        el('td', {}, String(v.seq)),
        el('td', {}, `${v.name}@${v.version} `, isCurrent ? el('span', { class: 'pill ok' }, 'serving') : ''),
        el('td', { class: 'mono' }, v.hash),
        el('td', { class: 'when' }, clock(v.loadedAt)),
        el('td', { class: 'num' }, fmt(v.messages)),
        el('td', { class: 'num' }, fmt(v.errors)),
        el('td', { title: v.lastError ? `${v.lastError.code}: ${v.lastError.message}` : '' },
          `${(rate * 100).toFixed(rate > 0 && rate < 0.01 ? 2 : 1)} %`,
          el('span', { class: 'errbar' }, el('b', { style: { width: `${Math.min(100, rate * 100 * 5)}%` } })),
        ),
      ),
    );
  }
}

function renderTimeline(swaps) {
  const list = $('timeline');
  if (!swaps.length) return;
  const firstRender = state.swaps.size === 0;
  const fresh = swaps.filter((r) => !state.swaps.has(key(r)));
  if (!fresh.length && list.children.length === swaps.length) return;
  list.replaceChildren();
  for (const r of [...swaps].reverse()) {
    const k = key(r);
    const isNew = !firstRender && !state.swaps.has(k);
    state.swaps.add(k);
    list.append(swapRow(r, isNew));
  }
}

function key(r) {
  return `${r.startedAt}|${r.id}`;
}

function swapRow(r, isNew) {
  const outcome = r.outcome === 'switched' ? 'ok' : r.outcome === 'unchanged' ? '' : 'bad';
  const rollback = r.trigger === 'rollback' || r.trigger === 'probation';
  const what =
    r.outcome === 'switched' ? `${r.from ? `${r.from} → ` : ''}${r.to}` : r.outcome === 'unchanged' ? `unchanged: ${r.to}` : `aborted in ${r.phase}: ${r.error ? r.error.code : ''}`;
  const bar = el('div', { class: 'phases', title: PHASES.filter((p) => r.durations[p] !== undefined).map((p) => `${p} ${r.durations[p]} ms`).join(', ') });
  const total = Math.max(r.totalMs, 0.001);
  for (const p of PHASES) {
    const ms = r.durations[p];
    if (ms === undefined) continue;
    bar.append(el('span', { style: { width: `${(ms / total) * 100}%`, background: PHASE_COLORS[p] } }));
  }
  return el('li', { class: isNew ? 'fresh' : '', 'data-trigger': r.trigger, 'data-outcome': r.outcome, 'data-to': r.to || '' },
    el('span', { class: 'when' }, clock(r.startedAt)),
    el('span', {}, el('span', { class: `pill ${rollback ? 'warn' : outcome}` }, rollback ? `⟲ ${r.trigger}` : r.trigger)),
    el('span', { class: 'what', title: r.error ? r.error.message : what }, what),
    el('div', { class: 'bar' }, bar, el('div', { class: 'ptext' }, `${r.totalMs} ms`)),
  );
}

function renderUpgrades(upgrades) {
  const body = $('upgrades');
  body.replaceChildren();
  if (!upgrades) return void body.append(el('tr', {}, el('td', { class: 'empty', colSpan: 4 }, 'not supervised (hotline dev or a library host)')));
  if (!upgrades.length) return void body.append(el('tr', {}, el('td', { class: 'empty', colSpan: 4 }, 'none yet')));
  for (const u of [...upgrades].reverse()) {
    body.append(
      el('tr', {},
        el('td', {}, el('span', { class: `pill ${u.outcome === 'committed' ? 'ok' : 'bad'}`, title: u.error ? u.error.message : '' }, u.outcome)),
        el('td', { class: 'num' }, fmt(u.moved)),
        el('td', { class: 'num' }, fmt(u.sentAway)),
        el('td', { class: 'num' }, fmt(u.durationMs)),
      ),
    );
  }
}

// ── the chart: connections (left axis) and message rates (right axis), a small canvas drawing ─────────────────────

function drawChart() {
  const c = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth;
  const h = c.clientHeight;
  if (c.width !== Math.round(w * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pts = state.points;
  const pad = { l: 40, r: 46, t: 8, b: 18 };
  const iw = w - pad.l - pad.r;
  const ih = h - pad.t - pad.b;
  const maxConn = niceMax(Math.max(1, ...pts.map((p) => p.conn)), true);
  const maxRate = niceMax(Math.max(1, ...pts.map((p) => Math.max(p.inRate, p.outRate))), false);
  g.strokeStyle = '#253040';
  g.fillStyle = '#8593a3';
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (ih * i) / 4;
    g.beginPath();
    g.moveTo(pad.l, y + 0.5);
    g.lineTo(w - pad.r, y + 0.5);
    g.stroke();
    g.textAlign = 'right';
    g.fillText(tick((maxConn * (4 - i)) / 4), pad.l - 6, y + 4);
    g.textAlign = 'left';
    g.fillText(tick((maxRate * (4 - i)) / 4), w - pad.r + 6, y + 4);
  }
  g.textAlign = 'center';
  g.fillText('5 min', pad.l + 18, h - 3);
  g.fillText('now', w - pad.r - 12, h - 3);
  const x = (i) => pad.l + (iw * (HISTORY - pts.length + i)) / (HISTORY - 1);
  const line = (get, max, color, fill) => {
    if (pts.length < 2) return;
    g.beginPath();
    pts.forEach((p, i) => {
      const y = pad.t + ih - (get(p) / max) * ih;
      if (i === 0) g.moveTo(x(i), y);
      else g.lineTo(x(i), y);
    });
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.stroke();
    if (fill) {
      g.lineTo(x(pts.length - 1), pad.t + ih);
      g.lineTo(x(0), pad.t + ih);
      g.closePath();
      g.fillStyle = fill;
      g.fill();
    }
  };
  line((p) => p.conn, maxConn, '#4fb3ff', 'rgba(79,179,255,.10)');
  line((p) => p.inRate, maxRate, '#3ecf8e');
  line((p) => p.outRate, maxRate, '#f5b642');
}

function tick(v) {
  return Number.isInteger(v) ? fmt(v) : v.toFixed(v < 1 ? 2 : 1);
}

/** The top of an axis of four steps, each a round number (a whole one for counts). */
function niceMax(v, whole) {
  const raw = v / 4;
  const e = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = 10 * e;
  for (const m of whole ? [1, 2, 5] : [1, 2, 2.5, 5]) {
    if (m * e >= raw) {
      step = m * e;
      break;
    }
  }
  return 4 * (whole ? Math.max(1, step) : step);
}

// ── the event stream: swaps and upgrades as they happen ─────────────────────────────────────────────────────────

async function follow() {
  if (state.stream) state.stream.abort();
  const ac = new AbortController();
  state.stream = ac;
  let retry = 1000;
  while (!ac.signal.aborted && state.token) {
    try {
      const res = await fetch('/api/events', { headers: { authorization: `Bearer ${state.token}` }, signal: ac.signal, cache: 'no-store' });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      streamState(true);
      retry = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (data) onEvent(JSON.parse(data.slice(6)));
        }
        if (buf.length > 1 << 20) break;
      }
    } catch {
      // Retried below, unless the page let go of it.
    }
    streamState(false);
    if (ac.signal.aborted) return;
    await new Promise((r) => setTimeout(r, retry));
    retry = Math.min(retry * 2, 10000);
  }
}

function streamState(open) {
  $('stream').textContent = open ? 'live' : 'reconnecting';
  $('stream').className = `pill ${open ? 'ok' : 'warn'}`;
}

function onEvent(e) {
  const d = e.data || {};
  let text;
  if (e.type === 'phase') text = `${d.phase} (${d.trigger})`;
  else if (e.type === 'swap') text = d.record ? `${d.record.outcome} ${d.record.to || ''} (${d.record.trigger}, ${d.record.totalMs} ms)` : '';
  else if (e.type === 'swap-error') text = `${d.error ? d.error.code : ''} in ${d.record ? d.record.phase : '?'}`;
  else if (e.type === 'probation-failed') text = `${d.version ? `${d.version.name}@${d.version.version}` : ''}: ${d.error ? d.error.code : ''}`;
  else if (e.type === 'upgrade-progress') text = `${d.phase} ${d.moved}/${d.total ?? '?'}`;
  else if (e.type === 'upgrade') text = `${d.outcome}: moved ${d.moved}, sent away ${d.sentAway}, ${d.durationMs} ms`;
  else text = JSON.stringify(d);
  const list = $('events');
  // Progress comes ten times a second: one line per upgrade is enough.
  if (e.type === 'upgrade-progress' && list.firstChild && list.firstChild.dataset.type === 'upgrade-progress') list.firstChild.remove();
  list.prepend(el('li', { 'data-type': e.type }, clock(e.at), ' ', el('b', {}, e.type), ' ', text));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  // A swap or an upgrade ended: show it now, not at the next poll.
  if (e.type === 'swap' || e.type === 'swap-error' || e.type === 'upgrade') poll();
}

// ── actions ─────────────────────────────────────────────────────────────────────────────────────────────────────

async function act(path, body, label) {
  const buttons = ['reload', 'force', 'rollback'].map($);
  for (const b of buttons) b.disabled = true;
  notice(`${label}…`);
  try {
    const r = await api(path, 'POST', body);
    notice(r && r.outcome ? `${label}: ${r.outcome}${r.to ? ` → ${r.to}` : ''}${r.totalMs !== undefined ? ` in ${r.totalMs} ms` : ''}` : `${label}: done`, 'ok');
  } catch (err) {
    notice(`${label} failed: ${err.message}`, 'bad');
  } finally {
    for (const b of buttons) b.disabled = !state.connected;
    poll();
  }
}

function notice(text, kind) {
  $('notice').textContent = text;
  $('notice').className = kind || '';
}

// ── helpers and start ───────────────────────────────────────────────────────────────────────────────────────────

function fmt(n, digits = 0) {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 10000) return `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k`;
  return digits ? n.toFixed(digits) : Math.round(n).toLocaleString();
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function start(token) {
  state.token = token;
  sessionStorage.setItem('hotline-token', token);
  state.points = [];
  state.last = undefined;
  poll();
  follow();
}

$('phase-legend').append(...PHASES.map((p) => el('span', {}, el('i', { style: { background: PHASE_COLORS[p] } }), p)));
$('auth').addEventListener('submit', (ev) => {
  ev.preventDefault();
  start($('token').value.trim());
});
$('reload').addEventListener('click', () => act('/api/reload', undefined, 'reload'));
$('force').addEventListener('click', () => act('/api/reload', { force: true }, 'force reload'));
$('rollback').addEventListener('click', () => act('/api/rollback', undefined, 'rollback'));
window.addEventListener('resize', drawChart);
drawChart();
// A token in the fragment (#token=…) is never sent to the server; it is moved to sessionStorage and dropped from the URL.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) history.replaceState(null, '', location.pathname);
const saved = fromHash || sessionStorage.getItem('hotline-token');
if (saved) {
  $('token').value = saved;
  start(saved);
}
