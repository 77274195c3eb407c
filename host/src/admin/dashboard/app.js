// Portcullis admin dashboard: polls the admin JSON API every 2 s and renders tables.
// Every value from the API is untrusted, so the DOM is built with createElement and
// text nodes only (never innerHTML), and styling is done purely by toggling classes.
'use strict';

const POLL_MS = 2000;
const CERT_WARN_DAYS = 14;
const DASH = '—';

let prev = null; // previous snapshot: { t, routes: Map(name -> route), plugins: Map(name -> calls) }

// ---------- DOM helpers ----------

// el('td', {class: 'x', data: {k: v}, title: 't'}, child, 'text', [more]) -> element.
// Strings become text nodes (Element.append), so data is never parsed as HTML.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}

const td = (cls, ...children) => el('td', { class: cls }, ...children);
const pill = (level, text) => el('span', { class: `pill pill-${level}` }, text);
const $ = (sel) => document.querySelector(sel);

// Replace a table's body; shows a single "empty" row when there is nothing to list.
function fillTable(id, rows, emptyText) {
  const table = document.getElementById(id);
  const cols = table.tHead.rows[0].cells.length;
  const body = rows.length ? rows : [el('tr', { class: 'empty' }, el('td', { colspan: cols }, emptyText))];
  table.tBodies[0].replaceChildren(...body);
  const count = document.getElementById(`${id}-count`);
  if (count) count.textContent = String(rows.length);
}

// ---------- formatting ----------

const pad2 = (n) => String(n).padStart(2, '0');
const fmtClock = (sec) => {
  const d = new Date(sec * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
};
function fmtAgo(sec) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - sec));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}
const fmtRate = (v) => (v == null ? DASH : v.toFixed(v < 10 ? 2 : 1));
const fmtPct = (v) => (v == null ? DASH : `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`);
function fmtMs(v, bounds) {
  if (v == null) return DASH;
  if (v === Infinity) return `> ${bounds[bounds.length - 1]}`;
  return v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : String(Math.round(v));
}
function fmtBytes(b) {
  if (b == null) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return i === 0 ? `${b} B` : `${b.toFixed(1)} ${units[i]}`;
}
// Class name for an error ratio: > 5 % is bad, > 1 % is a warning.
const errLevel = (r) => (r == null ? '' : r > 0.05 ? 'bad' : r > 0.01 ? 'warn' : '');
const listText = (xs) => (xs && xs.length ? xs.join(', ') : DASH);

// ---------- statistics ----------

// Prometheus histogram_quantile: `counts` are cumulative per upper bound in `bounds`,
// `total` also counts observations above the last bound (+Inf bucket). Returns ms,
// Infinity when the rank lies in the +Inf bucket, or null without observations.
function quantile(q, bounds, counts, total) {
  if (!(total > 0)) return null;
  let rank = q * total;
  const b = counts.findIndex((c) => c >= rank);
  if (b < 0) return Infinity;
  if (b === 0 && bounds[0] <= 0) return bounds[0];
  let start = 0;
  let count = counts[b];
  if (b > 0) {
    start = bounds[b - 1];
    count -= counts[b - 1];
    rank -= counts[b - 1];
  }
  return start + (bounds[b] - start) * (rank / count);
}

// Per-route window stats: deltas against the previous poll, or the cumulative values
// (and no rates) on the first poll or after a counter reset.
function routeStats(r, p, dt) {
  const h = r.duration_ms || { bounds: [], counts: [], count: 0 };
  const ph = p && p.duration_ms;
  const windowed = Boolean(
    p && ph && dt > 0 && r.requests >= p.requests && r.errors >= p.errors &&
      h.count >= ph.count && ph.counts.length === h.counts.length,
  );
  const counts = windowed ? h.counts.map((c, i) => c - ph.counts[i]) : h.counts;
  const total = windowed ? h.count - ph.count : h.count;
  const dReq = windowed ? r.requests - p.requests : null;
  const dErr = windowed ? r.errors - p.errors : null;
  return {
    dReq,
    dErr,
    reqRate: windowed ? dReq / dt : null,
    errRate: windowed && dReq > 0 ? dErr / dReq : null,
    p50: quantile(0.5, h.bounds, counts, total),
    p99: quantile(0.99, h.bounds, counts, total),
    bounds: h.bounds,
  };
}

// ---------- sections ----------

function renderRoutes(list, dt) {
  const seen = new Map();
  const tot = { req: 0, err: 0, windowed: false };
  const rows = list.map((r) => {
    const s = routeStats(r, prev && prev.routes.get(r.name), dt);
    seen.set(r.name, r);
    if (s.dReq != null) {
      tot.req += s.dReq;
      tot.err += s.dErr;
      tot.windowed = true;
    }
    const policies = (r.policies || []).flatMap((name, i) => [
      i ? ' ' : null,
      el('span', { class: name.startsWith('builtin:') ? 'tag tag-builtin' : 'tag' }, name),
    ]);
    return el('tr', { class: 'route', data: { route: r.name } },
      td('name mono', r.name),
      td('mono muted', listText(r.listeners || [])),
      td('hosts', listText(r.hosts)),
      el('td', { class: 'action', title: r.action }, r.action),
      td('num req-rate', fmtRate(s.reqRate)),
      el('td', { class: `num error-rate ${errLevel(s.errRate)}`, title: `${r.errors} of ${r.requests} total` },
        fmtPct(s.errRate)),
      td('num p50', fmtMs(s.p50, s.bounds)),
      td('num p99', fmtMs(s.p99, s.bounds)),
      td('policies', policies));
  });
  fillTable('routes', rows, 'No routes configured.');
  return { seen, tot };
}

// Earliest-expiring certificate across a listener's servers, as a status pill.
function certCell(certs, now) {
  const c = certs.reduce((a, x) => (!a || x.not_after < a.not_after ? x : a), null);
  if (!c) return td('cert-expiry', DASH);
  const expired = c.days_left < 0 || c.not_after <= now;
  const level = expired ? 'bad' : c.days_left < CERT_WARN_DAYS ? 'warn' : 'ok';
  const title = `${c.subject}\n${c.path}\nnot after ${new Date(c.not_after * 1000).toLocaleString()}`;
  return el('td', { class: 'cert-expiry', title, data: { daysLeft: c.days_left } },
    pill(level, expired ? 'expired' : `${c.days_left} d`));
}

function renderListeners(list, now) {
  fillTable('listeners', list.map((l) => {
    const servers = l.servers || [];
    const tls = [...new Set(servers.map((s) => s.tls_mode).filter(Boolean))];
    return el('tr', { class: 'listener', data: { listener: l.name } },
      td('name mono', l.name),
      td('mono', l.address),
      td(null, l.protocol),
      td(null, listText(tls)),
      td('hosts', listText(servers.flatMap((s) => s.hosts || []))),
      certCell(servers.flatMap((s) => s.certificates || []), now));
  }), 'No listeners.');
}

function renderClusters(list) {
  fillTable('clusters', list.map((c) => {
    const eps = c.endpoints || [];
    const ejected = eps.filter((e) => e.ejected);
    const detail = eps.map((e) => `${e.address} w=${e.weight} in-flight=${e.in_flight}${e.ejected ? ' EJECTED' : ''}`);
    const level = ejected.length === 0 ? null : ejected.length === eps.length ? 'bad' : 'warn';
    return el('tr', { class: 'cluster', data: { cluster: c.name } },
      td('name mono', c.name),
      td('mono', `${c.host}:${c.port}`),
      td(null, c.subset ?? DASH),
      el('td', { class: 'num', title: detail.join('\n') }, `${eps.length - ejected.length}/${eps.length}`),
      td('num', c.active_requests),
      td('num', c.connections),
      el('td', { class: 'ejected', data: { count: ejected.length } },
        level ? [pill(level, String(ejected.length)), ' ', el('span', { class: 'mono' }, ejected.map((e) => e.address).join(', '))] : '0'));
  }), 'No clusters.');
}

const HEALTH_LEVEL = { ok: 'ok', failing: 'bad', quarantined: 'bad' };

function renderPlugins(d, dt) {
  const seen = new Map();
  const all = [...(d.builtin || []).map((p) => ({ ...p, builtin: true })), ...(d.plugins || [])];
  fillTable('plugins', all.map((p) => {
    const s = p.stats || {};
    seen.set(p.name, s.calls);
    const before = prev && prev.plugins.get(p.name);
    const rate = before != null && dt > 0 && s.calls >= before ? (s.calls - before) / dt : null;
    const health = s.quarantines > 0 ? 'quarantined' : s.failures > 0 ? 'failing' : 'ok';
    const sub = p.builtin ? null : el('div', { class: 'sub mono', title: `${p.path}\nsha256 ${p.sha256}` },
      `${p.path} · ${String(p.sha256 || '').slice(0, 12)}`);
    return el('tr', { class: p.builtin ? 'plugin builtin' : 'plugin', data: { plugin: p.name, health } },
      td('name mono', p.name, sub),
      td(null, p.builtin ? 'built-in' : `${p.phase} (prio ${p.priority})`),
      td('health', pill(HEALTH_LEVEL[health], health)),
      td('num', fmtRate(rate)),
      td('num', s.calls),
      td(`num${s.failures > 0 ? ' bad' : ''}`, s.failures),
      td('num', s.instances),
      td('num', fmtBytes(s.memory_high_water_bytes)),
      td(`num${s.quarantines > 0 ? ' bad' : ''}`, s.quarantines),
      td('num', s.log_lines_dropped));
  }), 'No plugins.');
  return seen;
}

function renderReloads(r) {
  const parts = [`${r.reloads} reloads`, `${r.failures} failed`];
  if (r.loaded_at) parts.push(`loaded ${fmtClock(r.loaded_at)} (${fmtAgo(r.loaded_at)})`);
  const summary = $('#reload-summary');
  summary.replaceChildren(parts.join(' · '));
  if (r.reloading_since) summary.append(' ', pill('warn', `reloading since ${fmtClock(r.reloading_since)}`));

  const box = $('#last-error');
  box.hidden = !r.last_error;
  box.querySelector('pre').textContent = r.last_error || '';

  fillTable('reloads', (r.history || []).map((h) => {
    const ok = h.result === 'success';
    const firstLine = h.error ? h.error.split('\n')[0] : DASH;
    return el('tr', { class: 'reload', data: { result: h.result } },
      td('mono', fmtClock(h.at)),
      td('muted', fmtAgo(h.at)),
      td('num', h.generation),
      td(null, pill(ok ? 'ok' : 'bad', h.result)),
      el('td', { class: h.error ? 'error-text mono' : 'muted', title: h.error || null }, firstLine));
  }), 'No reloads yet.');
}

function renderHeader(gen, tot, dt) {
  $('#generation').textContent = String(gen);
  const rps = tot.windowed && dt > 0 ? tot.req / dt : null;
  const err = tot.windowed && tot.req > 0 ? tot.err / tot.req : null;
  $('#total-rps').textContent = fmtRate(rps);
  const errEl = $('#total-err');
  errEl.textContent = fmtPct(err);
  errEl.classList.toggle('warn', errLevel(err) === 'warn');
  errEl.classList.toggle('bad', errLevel(err) === 'bad');
  $('#updated').textContent = fmtClock(Date.now() / 1000);
}

// ---------- polling ----------

async function getJSON(path) {
  const res = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function render(d, now) {
  const dt = prev ? now - prev.t : 0;
  const routes = renderRoutes(d.routes || [], dt);
  renderListeners(d.listeners || [], now);
  renderClusters(d.clusters || []);
  const plugins = renderPlugins(d.plugins || {}, dt);
  renderReloads(d.reloads);
  renderHeader(d.reloads.generation, routes.tot, dt);
  document.body.dataset.generation = String(d.reloads.generation);
  prev = { t: now, routes: routes.seen, plugins };
  document.body.dataset.loaded = 'true';
}

async function poll() {
  try {
    const names = ['reloads', 'plugins', 'listeners', 'clusters', 'routes'];
    const values = await Promise.all(names.map((n) => getJSON(`/${n}`)));
    render(Object.fromEntries(names.map((n, i) => [n, values[i]])), Date.now() / 1000);
    $('#banner').hidden = true;
  } catch (e) {
    $('#banner-detail').textContent = e && e.message ? `(${e.message})` : '';
    $('#banner').hidden = false;
    console.warn('dashboard refresh failed:', e);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
