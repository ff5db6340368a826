// farm dashboard: reads the master's live feed (/api/events, server-sent events read with
// fetch so the token travels in the Authorization header, never in a URL), renders jobs,
// workers and throughput in place (rows are kept by id, so nothing reloads), and sends the
// cancel and drain actions. No dependencies.
'use strict';

const TOKEN_KEY = 'farm-token';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let lastFrame = null;
let openJob = null;
// Who the token names and what it may do (/api/me); actions it may not take are greyed out.
let me = null;
async function loadMe() {
  try {
    const res = await fetch('/api/me', { headers: headers(), cache: 'no-store' });
    me = res.ok ? await res.json() : null;
  } catch (e) { me = null; }
  const who = $('whoami');
  if (who) who.textContent = me ? me.name + ' (' + me.roles.join(', ') + ')' : '';
}
function mayCancel(owner) {
  return !me || me.may_cancel_any || (me.may_cancel_own && owner === me.name);
}
function mayDrain() { return !me || me.may_drain; }

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h['Authorization'] = 'Bearer ' + token;
  return h;
}

// ---- formatting ----
function fmtNum(n) {
  if (n === null || n === undefined) return '–';
  if (n >= 1e9) return (n / 1e9).toFixed(2) + 'G';
  if (n >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return String(Math.round(n * 10) / 10);
}
function fmtDur(s) {
  if (s === null || s === undefined || !isFinite(s)) return '–';
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}
function fmtBytes(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(1) + ' GiB';
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + ' MiB';
  if (b >= 1 << 10) return (b / (1 << 10)).toFixed(1) + ' KiB';
  return b + ' B';
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function setText(e, text) { if (e.textContent !== text) e.textContent = text; }

// ---- connection state ----
function setConn(state, text) {
  $('dot').className = 'dot ' + state;
  $('conn').textContent = text;
}
// What the empty tables say: nothing is known before the first frame or behind the token, so
// they never claim there are no jobs or workers then.
const EMPTY = {
  token: ['The jobs are behind the token: enter it to see them.', 'The workers are behind the token.'],
  data: ['No jobs yet. Submit one: ', 'No workers connected.'],
};
let emptyKind = '';
function setEmpty(kind) {
  if (emptyKind === kind) return;
  emptyKind = kind;
  const [jobs, workers] = EMPTY[kind];
  $('jobs-empty').textContent = jobs;
  if (kind === 'data') $('jobs-empty').appendChild(el('code', '', 'farm submit primes --range 0..10000000'));
  $('workers-empty').textContent = workers;
}
function askToken() {
  setConn('down', 'token needed');
  // Rows seen with an earlier token are not shown behind the prompt.
  for (const rows of [jobRows, workerRows]) {
    for (const r of rows.values()) r.tr.remove();
    rows.clear();
  }
  $('jobs-empty').hidden = false;
  $('workers-empty').hidden = false;
  setText($('jobs-hint'), '');
  setText($('workers-hint'), '');
  setEmpty('token');
  $('token-dialog').hidden = false;
  $('token-input').focus();
}
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token-input').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-dialog').hidden = true;
  restart();
});
$('token-button').addEventListener('click', () => { $('token-input').value = ''; askToken(); });

// ---- the live feed ----
let controller = null;
let backoff = 1000;
function restart() {
  if (controller) controller.abort();
  controller = new AbortController();
  stream(controller.signal);
}
async function stream(signal) {
  try {
    const res = await fetch('/api/events', { headers: headers(), signal, cache: 'no-store' });
    if (res.status === 401) { askToken(); return; }
    if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
    await loadMe();
    setConn('live', 'live');
    backoff = 1000;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = chunk.split('\n').filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) render(JSON.parse(data));
      }
    }
    throw new Error('stream ended');
  } catch (e) {
    if (signal.aborted) return;
    setConn('down', 'reconnecting…');
    setTimeout(() => { if (!signal.aborted) stream(signal); }, backoff);
    backoff = Math.min(backoff * 2, 10000);
  }
}

// ---- rendering ----
function render(f) {
  lastFrame = f;
  setEmpty('data');
  setConn('live', 'live · ' + new Date(f.now_ms).toLocaleTimeString());
  const t = f.totals;
  const running = (f.states.running || 0) + (f.states.queued || 0);
  setText($('t-workers'), String(f.workers.length));
  setText($('t-threads'), t.busy + ' / ' + t.threads);
  setText($('t-jobs'), String(running));
  setText($('t-queued'), fmtNum(t.queued));
  const last = f.throughput.length ? f.throughput[f.throughput.length - 1][1] : 0;
  setText($('t-rate'), fmtNum(last) + '/s');
  setText($('t-done'), fmtNum(t.done));
  renderJobs(f.jobs, f.states);
  renderWorkers(f.workers);
  drawChart(f.throughput);
  if (openJob !== null) refreshDetail();
}

const jobRows = new Map();
function jobRow(id) {
  let r = jobRows.get(id);
  if (r) return r;
  const tr = el('tr', 'clickable');
  tr.dataset.job = id;
  const c = {};
  const idCell = el('td');
  const a = el('a', 'id', '#' + id);
  a.href = '#job-' + id;
  idCell.appendChild(a);
  tr.appendChild(idCell);
  for (const [name, cls] of [['kind', ''], ['owner', ''], ['state', 'state'], ['progress', 'wide'], ['rate', 'num'],
    ['eta', 'num'], ['reruns', 'num opt'], ['error', 'err opt'], ['action', '']]) {
    c[name] = el('td', cls);
    tr.appendChild(c[name]);
  }
  c.badge = el('span', 'badge');
  c.state.appendChild(c.badge);
  const prog = el('div', 'progress');
  const track = el('div', 'track');
  c.fill = el('div', 'fill');
  track.appendChild(c.fill);
  c.pct = el('span', 'pct');
  prog.appendChild(track);
  prog.appendChild(c.pct);
  c.progress.appendChild(prog);
  c.cancel = el('button', 'small cancel', 'Cancel');
  c.cancel.type = 'button';
  c.cancel.dataset.job = id;
  c.cancel.addEventListener('click', (ev) => { ev.stopPropagation(); cancelJob(id, c.cancel); });
  c.action.appendChild(c.cancel);
  tr.addEventListener('click', () => showDetail(id));
  r = { tr, c };
  jobRows.set(id, r);
  return r;
}
function renderJobs(jobs, states) {
  const body = document.querySelector('#jobs tbody');
  const seen = new Set();
  jobs.forEach((j, i) => {
    const { tr, c } = jobRow(j.id);
    seen.add(j.id);
    setText(c.kind, j.kind);
    setText(c.owner, j.owner || '');
    setText(c.badge, j.state);
    c.badge.className = 'badge ' + j.state;
    tr.dataset.state = j.state;
    tr.dataset.done = j.done;
    const pct = j.total ? (100 * j.done) / j.total : 0;
    c.fill.style.width = pct.toFixed(2) + '%';
    c.fill.className = 'fill ' + j.state;
    setText(c.pct, fmtNum(j.done) + ' / ' + fmtNum(j.total) + ' (' + pct.toFixed(pct < 10 ? 1 : 0) + '%)');
    const going = j.state === 'queued' || j.state === 'running';
    setText(c.rate, j.done === 0 ? '–' : fmtNum(j.rate) + (going ? '/s' : '/s avg'));
    setText(c.eta, j.eta_s === null ? (j.state === 'running' ? '…' : '–') : fmtDur(j.eta_s));
    setText(c.reruns, String(j.reruns));
    setText(c.error, j.error || '');
    c.error.title = j.error || '';
    c.cancel.hidden = !going;
    c.cancel.disabled = !mayCancel(j.owner);
    c.cancel.title = c.cancel.disabled ? 'cancelling another principal\'s job needs role operate' : '';
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  for (const [id, r] of jobRows) {
    if (!seen.has(id)) { r.tr.remove(); jobRows.delete(id); }
  }
  $('jobs-empty').hidden = jobs.length > 0;
  setText($('jobs-hint'), (states.succeeded || 0) + ' succeeded · ' + (states.failed || 0) + ' failed · '
    + (states.cancelled || 0) + ' cancelled · ' + fmtBytes(lastFrame.totals.live_bytes) + ' held by live jobs');
}

const workerRows = new Map();
function workerRow(id) {
  let r = workerRows.get(id);
  if (r) return r;
  const tr = el('tr');
  tr.dataset.worker = id;
  const c = {};
  for (const [name, cls] of [['id', ''], ['name', ''], ['host', 'opt'], ['threads', 'num'], ['busy', ''],
    ['done', 'num'], ['rate', 'num'], ['heard', 'num opt'], ['dialed', 'opt'], ['action', '']]) {
    c[name] = el('td', cls);
    tr.appendChild(c[name]);
  }
  const mini = el('span', 'mini');
  c.bar = el('span');
  mini.appendChild(c.bar);
  c.busyText = el('span');
  c.busy.appendChild(mini);
  c.busy.appendChild(c.busyText);
  c.nameText = el('span');
  c.flag = el('span', 'badge');
  c.name.appendChild(c.nameText);
  c.name.appendChild(document.createTextNode(' '));
  c.name.appendChild(c.flag);
  c.drain = el('button', 'small drain', 'Drain');
  c.drain.type = 'button';
  c.drain.addEventListener('click', () => drainWorker(id, c.drain));
  c.action.appendChild(c.drain);
  r = { tr, c };
  workerRows.set(id, r);
  return r;
}
function renderWorkers(workers) {
  const body = document.querySelector('#workers tbody');
  const seen = new Set();
  workers.forEach((w, i) => {
    const { tr, c } = workerRow(w.id);
    seen.add(w.id);
    setText(c.id, String(w.id));
    setText(c.nameText, w.name || '(unnamed)');
    const flag = w.suspect ? 'suspect' : (w.draining ? 'draining' : '');
    setText(c.flag, flag);
    c.flag.className = 'badge ' + flag;
    c.flag.title = w.suspect || '';
    c.flag.hidden = !flag;
    setText(c.host, w.hostname + (w.pid ? ' · pid ' + w.pid : ''));
    c.host.title = w.address;
    setText(c.threads, String(w.threads));
    c.bar.style.width = (w.threads ? (100 * w.busy) / w.threads : 0).toFixed(0) + '%';
    setText(c.busyText, w.busy + '/' + w.threads);
    setText(c.done, fmtNum(w.done));
    setText(c.rate, fmtNum(w.rate) + '/s');
    setText(c.heard, w.heard_ms < 1000 ? 'now' : fmtDur(w.heard_ms / 1000) + ' ago');
    setText(c.dialed, w.dialed_by === 'master' ? 'master dialed' : 'worker dialed');
    c.drain.disabled = w.draining || !mayDrain();
    c.drain.title = mayDrain() ? '' : 'draining needs role operate';
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  for (const [id, r] of workerRows) {
    if (!seen.has(id)) { r.tr.remove(); workerRows.delete(id); }
  }
  $('workers-empty').hidden = workers.length > 0;
  const threads = workers.reduce((s, w) => s + w.threads, 0);
  setText($('workers-hint'), workers.length + ' connected · ' + threads + ' threads');
}

// ---- actions: a first click arms the button, a second within 3 s acts ----
function armed(button, label) {
  if (button.dataset.armed) return true;
  button.dataset.armed = '1';
  const before = button.textContent;
  button.textContent = label;
  button.classList.add('confirm');
  setTimeout(() => { delete button.dataset.armed; button.textContent = before; button.classList.remove('confirm'); }, 3000);
  return false;
}
async function act(url) {
  const res = await fetch(url, { method: 'POST', headers: headers({ 'x-farm-action': '1' }) });
  if (res.status === 401) { askToken(); return null; }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { alert(body.error || ('HTTP ' + res.status)); return null; }
  return body;
}
async function cancelJob(id, button) {
  if (!armed(button, 'Confirm?')) return;
  button.disabled = true;
  await act('/api/jobs/' + id + '/cancel');
  button.disabled = false;
}
async function drainWorker(id, button) {
  if (!armed(button, 'Confirm?')) return;
  button.disabled = true;
  await act('/api/workers/' + id + '/drain');
}

// ---- job detail ----
function showDetail(id) {
  openJob = id;
  $('detail').hidden = false;
  history.replaceState(null, '', '#job-' + id);
  refreshDetail();
}
$('d-close').addEventListener('click', () => {
  openJob = null;
  $('detail').hidden = true;
  history.replaceState(null, '', location.pathname);
});
let detailBusy = false;
async function refreshDetail() {
  if (detailBusy || openJob === null) return;
  detailBusy = true;
  const id = openJob;
  try {
    const res = await fetch('/api/jobs/' + id, { headers: headers() });
    if (res.status === 401) { askToken(); return; }
    const d = await res.json();
    if (id !== openJob) return;
    if (!res.ok) { setText($('d-title'), 'Job #' + id + ': ' + (d.error || res.status)); return; }
    renderDetail(d);
  } catch (e) {
    // the feed shows the connection state
  } finally {
    detailBusy = false;
  }
}
function renderDetail(d) {
  const j = d.job;
  setText($('d-title'), 'Job #' + j.id + ' · ' + j.kind);
  const facts = [
    ['State', j.state], ['Progress', j.done + ' / ' + j.total + ' shards'], ['Running', String(j.running)],
    ['Queued', String(j.queued)], ['Reruns', String(j.reruns)], ['Priority', String(j.priority)],
    ['Elapsed', fmtDur(j.elapsed_ms / 1000)], ['Average rate', fmtNum(j.rate) + ' shards/s'],
  ];
  const dl = $('d-facts');
  dl.textContent = '';
  for (const [k, v] of facts) { dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', '', v)); }
  $('d-error').hidden = !j.error;
  setText($('d-error'), j.error || '');
  const box = $('d-troubles');
  box.textContent = '';
  if (!d.troubles.length) {
    box.appendChild(el('div', 'muted', j.state === 'failed' ? 'The error above names the shard that failed the job.' : 'None so far.'));
  } else {
    const table = el('table', 'grid');
    const head = el('tr');
    for (const h of ['Shard', 'Indices', 'Failed runs', 'Workers lost']) head.appendChild(el('th', '', h));
    table.appendChild(head);
    for (const t of d.troubles) {
      const tr = el('tr');
      for (const v of [t.shard, t.lo + '..' + t.hi, t.failures, t.crashes]) tr.appendChild(el('td', '', String(v)));
      table.appendChild(tr);
    }
    box.appendChild(table);
    if (d.troubled > d.troubles.length) box.appendChild(el('div', 'muted', '…and ' + (d.troubled - d.troubles.length) + ' more'));
  }
  setText($('d-logs'), !d.logs ? 'Per-shard logs cannot be read now.' : (d.logs.length ? '' : 'No shard has logged anything.'));
  if (d.logs) { for (const line of d.logs) $('d-logs').appendChild(el('div', '', line)); }
}

// ---- throughput chart (canvas, by hand) ----
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function drawChart(points) {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 52, right = 10, top = 10, bottom = 24;
  const pw = w - left - right, ph = h - top - bottom;
  const now = lastFrame ? lastFrame.now_ms : Date.now();
  // The window grows with the history, from 2 to 10 minutes.
  const oldest = points.length ? points[0][0] : now;
  const span = Math.min(10 * 60000, Math.max(2 * 60000, now - oldest));
  const max = niceMax(points.reduce((m, p) => Math.max(m, p[1]), 0));
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#6b7488';
  g.strokeStyle = '#edf0f5';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + pw, Math.round(y) + 0.5); g.stroke();
    g.fillText(fmtNum((max * i) / 4), left - 8, y);
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const step = span <= 2 * 60000 ? 30000 : span <= 5 * 60000 ? 60000 : 120000;
  for (let ago = 0; ago <= span; ago += step) {
    const x = left + pw - (pw * ago) / span;
    const label = ago === 0 ? 'now' : '-' + (ago % 60000 ? ago / 1000 + 's' : ago / 60000 + 'm');
    g.fillText(label, x, top + ph + 6);
  }
  const xs = (t) => left + pw - (pw * (now - t)) / span;
  const ys = (v) => top + ph - (ph * v) / max;
  const shown = points.filter((p) => now - p[0] <= span);
  if (shown.length < 2) return;
  g.beginPath();
  g.moveTo(xs(shown[0][0]), ys(0));
  for (const p of shown) g.lineTo(xs(p[0]), ys(p[1]));
  g.lineTo(xs(shown[shown.length - 1][0]), ys(0));
  g.closePath();
  g.fillStyle = 'rgba(47, 111, 237, 0.12)';
  g.fill();
  g.beginPath();
  shown.forEach((p, i) => (i ? g.lineTo(xs(p[0]), ys(p[1])) : g.moveTo(xs(p[0]), ys(p[1]))));
  g.strokeStyle = '#2f6fed';
  g.lineWidth = 2;
  g.stroke();
}
window.addEventListener('resize', () => { if (lastFrame) drawChart(lastFrame.throughput); });

// ---- start ----
const fromHash = /^#job-(\d+)$/.exec(location.hash);
if (fromHash) showDetail(Number(fromHash[1]));
restart();
