// picoflow's web page: an overview of the workflows, a workflow's graph and history, a run's
// tasks, timeline and logs (live while it runs). Plain ES2020, no dependencies. Every text
// that comes from the daemon goes into the page through textContent or a text node, never
// as markup, so a task that prints HTML shows it as text.
'use strict';
(() => {
  const TOKEN_KEY = 'picoflow.token';
  const NS = 'http://www.w3.org/2000/svg';
  const main = document.getElementById('main');
  const LIVE = new Set(['pending', 'running', 'ready', 'retry_wait']);
  // Terminal escape sequences (colours, cursor moves) are dropped from the log text.
  const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

  // ---------- DOM helpers: markup is never built from strings.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const k of kids) if (k != null && k !== false) e.append(k);
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(NS, tag);
    setAttrs(e, attrs);
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const k in attrs) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k === 'class') e.setAttribute('class', v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  const link = (href, text, cls) => el('a', { href, class: cls }, text);
  const wfHref = (name) => '#/w/' + encodeURIComponent(name);
  const runHref = (id) => '#/r/' + id;
  function badge(status) {
    return el('span', { class: 'badge st-' + status, 'data-status': status }, status.replace('_', ' '));
  }
  function section(title, ...kids) {
    return el('section', { class: 'card' }, el('h2', null, title), ...kids);
  }
  function table(headers, cls) {
    const tbody = el('tbody');
    const t = el('table', { class: cls || '' },
      el('thead', null, el('tr', null, ...headers.map((h) => el('th', null, h)))), tbody);
    return { wrap: el('div', { class: 'scroll' }, t), tbody };
  }

  // ---------- Times and durations, in the browser's zone.
  const pad = (n) => String(n).padStart(2, '0');
  function fmtDur(ms) {
    if (ms == null) return '';
    if (ms < 1000) return (ms < 10 && ms % 1 ? ms.toFixed(1) : Math.round(ms)) + ' ms';
    const s = ms / 1000;
    if (s < 60) return (s < 10 && s % 1 ? s.toFixed(1) : Math.round(s)) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.round(s % 60) + ' s';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function rel(iso) {
    if (!iso) return '';
    const d = (Date.parse(iso) - Date.now()) / 1000;
    const a = Math.abs(d);
    let t;
    if (a < 5) return 'just now';
    if (a < 60) t = Math.round(a) + ' s';
    else if (a < 3600) t = Math.round(a / 60) + ' min';
    else if (a < 172800) t = Math.round(a / 3600) + ' h';
    else t = Math.round(a / 86400) + ' days';
    return d < 0 ? t + ' ago' : 'in ' + t;
  }
  // A time in the browser's zone with its UTC offset, as the CLI prints it: 2026-12-06 07:00:23 +01:00.
  function local(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const o = -d.getTimezoneOffset(), ao = Math.abs(o);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' +
      pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' ' + (o < 0 ? '-' : '+') + pad(Math.floor(ao / 60)) + ':' + pad(ao % 60);
  }
  function when(iso) {
    if (!iso) return el('span', { class: 'muted' }, '—');
    return el('time', { datetime: iso, title: local(iso) }, rel(iso));
  }
  function whenLong(iso) {
    if (!iso) return el('span', { class: 'muted' }, '—');
    return el('time', { datetime: iso }, local(iso) + ' (' + rel(iso) + ')');
  }

  // A cron expression in words where it is a common shape; the expression itself otherwise.
  const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
  const MACROS = { '@hourly': 'every hour', '@daily': 'every day at 00:00', '@midnight': 'every day at 00:00',
    '@weekly': 'Sundays at 00:00', '@monthly': 'on day 1 of each month at 00:00', '@yearly': 'every 1 January at 00:00',
    '@annually': 'every 1 January at 00:00' };
  function cronWords(expr) {
    if (MACROS[expr]) return MACROS[expr];
    const f = expr.trim().split(/\s+/);
    if (f.length !== 5) return expr;
    const [mi, h, dom, mon, dow] = f;
    const num = (s) => /^\d+$/.test(s);
    const anyDay = dom === '*' && mon === '*';
    let m;
    if (f.every((x) => x === '*')) return 'every minute';
    if ((m = /^\*\/(\d+)$/.exec(mi)) && h === '*' && anyDay && dow === '*') return 'every ' + m[1] + ' min';
    if (num(mi) && h === '*' && anyDay && dow === '*') return 'hourly at :' + pad(mi);
    if (num(mi) && (m = /^\*\/(\d+)$/.exec(h)) && anyDay && dow === '*') return 'every ' + m[1] + ' h at :' + pad(mi);
    if (!num(mi) || !num(h)) return expr;
    const at = pad(h) + ':' + pad(mi);
    if (anyDay && dow === '*') return 'daily at ' + at;
    if (anyDay && dow === '1-5') return 'weekdays at ' + at;
    if (anyDay && num(dow) && +dow <= 7) return DAYS[+dow] + 's at ' + at;
    if (num(dom) && mon === '*' && dow === '*') return 'monthly on day ' + dom + ' at ' + at;
    return expr;
  }
  // What started a run of triggers or the fleet (docs/triggers.md), in one line.
  function eventText(e) {
    if (!e) return null;
    const parts = [];
    if (e.file) parts.push(e.file);
    if (e.topic) parts.push('topic ' + e.topic);
    if (e.payload) parts.push('payload ' + (e.payload.length > 200 ? e.payload.slice(0, 200) + '…' : e.payload));
    if (e.source) parts.push('from ' + e.source);
    return parts.join(' · ');
  }
  // The kinds of a workflow's triggers: workflow.list gives words, workflow.get objects.
  function triggerKinds(w) {
    return (w.triggers || []).map((t) => (typeof t === 'string' ? t : t.kind));
  }
  function scheduleCell(w) {
    const kinds = triggerKinds(w);
    const on = kinds.length ? 'on ' + kinds.join(', ') : '';
    if (!w.schedule || !w.schedule.length) return el('span', { class: 'muted' }, on || 'manual');
    const words = w.schedule.map(cronWords).join('; ');
    const zone = w.timezone || 'daemon zone';
    return el('span', { title: w.schedule.join('; ') }, words, el('span', { class: 'muted' }, ' · ' + zone + (on ? ' · ' + on : '')));
  }

  // ---------- The API: GET for reads, POST with the token for actions.
  class ApiError extends Error {
    constructor(status, message, code) { super(message); this.status = status; this.code = code; }
  }
  function apiUrl(method, params) {
    const q = new URLSearchParams();
    for (const k in params || {}) if (params[k] != null) q.set(k, String(params[k]));
    const s = q.toString();
    return 'api/v1/' + method + (s ? '?' + s : '');
  }
  async function answer(r) {
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON: use the status line */ }
    if (!r.ok) {
      const err = body && body.error;
      throw new ApiError(r.status, (err && err.message) || ('HTTP ' + r.status + ' ' + r.statusText), err && err.code);
    }
    return body;
  }
  // A request that cannot reach the daemon (stopped, restarting) raises the banner; any answer
  // clears it. The banner's own poll keeps trying, and reloads a page that could not load.
  const banner = document.getElementById('offline');
  let offline = false;
  let offlineTimer = 0;
  function setOffline(on) {
    if (on === offline) return;
    offline = on;
    banner.hidden = !on;
    document.body.classList.toggle('offline', on);
    clearInterval(offlineTimer);
    if (on) {
      offlineTimer = setInterval(() => { api('daemon.version', { protocol: 1 }).catch(() => {}); }, 2000);
    } else {
      if (msgNet) msg.hidden = true;
      if (view && view.failed) route();
      else if (view && view.reconnect) view.reconnect();
    }
  }
  async function send(url, init) {
    let r;
    try { r = await fetch(url, init); } catch (e) {
      setOffline(true);
      throw new ApiError(0, 'picoflowd is not reachable (retrying)');
    }
    setOffline(false);
    return answer(r);
  }
  async function api(method, params) {
    return send(apiUrl(method, params), { headers: { Accept: 'application/json' } });
  }
  async function post(method, params) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    return send('api/v1/' + method, {
      method: 'POST', headers, body: JSON.stringify(params), credentials: 'omit' });
  }

  // ---------- Messages and the token panel.
  const msg = document.getElementById('msg');
  let msgTimer = 0;
  let msgNet = false;  // the message is about a failed request: cleared when the daemon answers
  let msgAt = 0;
  function flash(text, kind, net) {
    msgNet = !!net;
    msgAt = Date.now();
    document.getElementById('msg-text').textContent = text;
    msg.className = kind === 'err' ? 'err' : 'ok';
    msg.hidden = false;
    clearTimeout(msgTimer);
    if (kind !== 'err') msgTimer = setTimeout(() => { msg.hidden = true; }, 6000);
  }
  document.getElementById('msg-close').addEventListener('click', () => { msg.hidden = true; });

  const panel = document.getElementById('token-panel');
  const tokenInput = document.getElementById('token-input');
  function tokenState() {
    const has = !!localStorage.getItem(TOKEN_KEY);
    document.getElementById('token-btn').textContent = has ? 'Token ✓' : 'Token';
    document.getElementById('token-state').textContent = has
      ? 'A token is stored in this browser.' : 'No token stored: actions will be refused.';
  }
  function openToken() { panel.hidden = false; tokenInput.focus(); }
  document.getElementById('token-btn').addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) tokenInput.focus();
  });
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const t = tokenInput.value.trim();
    if (t) localStorage.setItem(TOKEN_KEY, t);
    tokenInput.value = '';
    tokenState();
    if (t) { panel.hidden = true; flash('Token saved in this browser.', 'ok'); }
  });
  document.getElementById('token-forget').addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    tokenState();
    flash('Token forgotten.', 'ok');
  });
  document.getElementById('token-close').addEventListener('click', () => { panel.hidden = true; });
  tokenState();

  // Runs an action; a refusal (401: no or wrong token, 403: tokens not enabled) is explained.
  async function act(label, method, params, then) {
    try {
      const res = await post(method, params);
      flash(label + ': done.', 'ok');
      if (then) then(res);
    } catch (e) {
      if (e.status === 401) {
        flash(label + ' refused (HTTP 401): ' + e.message + ' — set the token (Token button).', 'err');
        if (!localStorage.getItem(TOKEN_KEY)) openToken();
      } else if (e.status === 403) {
        flash(label + ' refused (HTTP 403): ' + e.message, 'err');
      } else {
        flash(label + ' failed' + (e.status ? ' (HTTP ' + e.status + ')' : '') + ': ' + e.message, 'err', !e.status);
      }
    }
  }
  const button = (text, onclick, cls) => el('button', { type: 'button', class: 'btn ' + (cls || ''), onclick }, text);

  // ---------- Routing: #/ overview, #/w/NAME workflow, #/r/ID run. Each view registers what
  // to stop (timers, streams) when the page moves on.
  let view = null;
  function route() {
    if (view) { view.alive = false; view.stops.forEach((f) => { try { f(); } catch (e) { /* gone */ } }); }
    const v = view = { alive: true, stops: [], t0: performance.now() };
    document.body.removeAttribute('data-ready');
    // Messages stay with their page; but "done" goes along to the page the action opened.
    if (!msg.hidden && (msg.className === 'err' || Date.now() - msgAt > 2000)) msg.hidden = true;
    const hash = location.hash.replace(/^#/, '') || '/';
    const cut = hash.indexOf('?');
    const path = decodeURIComponent(cut < 0 ? hash : hash.slice(0, cut));
    const query = cut < 0 ? '' : hash.slice(cut + 1);
    const q = new URLSearchParams(query || '');
    let m;
    let page;
    if ((m = /^\/w\/(.+)$/.exec(path))) page = workflowPage(v, m[1], q);
    else if ((m = /^\/r\/(\d+)$/.exec(path))) page = runPage(v, +m[1], q);
    else page = overviewPage(v);
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('on', path === '/' && a.getAttribute('href') === '#/');
    page.then(() => ready(v, path), (e) => {
      if (!v.alive) return;
      v.failed = true;
      main.replaceChildren(el('div', { class: 'card error' }, el('h2', null, 'Could not load this page'),
        el('p', null, e.message), link('#/', '← all workflows')));
      ready(v, path);
    });
  }
  // Marks the page drawn once the browser has laid it out (the browser test waits for this).
  function ready(v, path) {
    requestAnimationFrame(() => setTimeout(() => {
      if (!v.alive) return;
      window.picoflowRenderMs = Math.round(performance.now() - v.t0);
      document.body.dataset.ready = path;
    }, 0));
  }
  function every(v, ms, fn) {
    const id = setInterval(() => { if (!document.hidden) fn(); }, ms);
    v.stops.push(() => clearInterval(id));
  }
  window.addEventListener('hashchange', route);

  // The daemon line in the header.
  function daemonLine(st) {
    const d = document.getElementById('daemon');
    d.textContent = 'picoflowd ' + st.version + ' · up ' + fmtDur(st.uptime_ms);
    d.title = 'pid ' + st.pid + ', socket ' + st.socket;
  }

  // ---------- Overview.
  async function overviewPage(v) {
    const draw = async () => {
      const [st, wl] = await Promise.all([api('daemon.status'), api('workflow.list', { unloaded: true })]);
      if (!v.alive) return;
      if (msgNet) msg.hidden = true;
      daemonLine(st);
      const strips = new Map();
      const content = [daemonCard(st), loadErrors(st), workflowTable(wl.workflows, strips)];
      main.replaceChildren(...content.filter(Boolean));
      await fillStrips(v, strips);
    };
    await draw();
    every(v, 5000, () => draw().catch((e) => { if (e.status) flash('Refresh failed: ' + e.message, 'err', true); }));
  }
  function daemonCard(st) {
    const store = st.store || {};
    const fields = [
      ['version', st.version], ['uptime', fmtDur(st.uptime_ms)], ['workflows', st.workflows],
      ['active runs', st.active_runs], ['active tasks', st.active_tasks],
      ['store', store.state === 'ok' ? 'ok' : (store.state + ': ' + (store.reason || '') + ' ' + (store.error || ''))],
      ['containment', st.containment ? st.containment.mode : ''], ['state dir', st.state_dir],
    ];
    if (st.db_bytes != null) fields.splice(6, 0, ['database', fmtBytes(st.db_bytes)]);
    return el('section', { class: 'card daemon-card' }, el('dl', { class: 'facts' },
      ...fields.flatMap(([k, val]) => [el('dt', null, k), el('dd', { class: store.state !== 'ok' && k === 'store' ? 'bad' : null }, String(val))])));
  }
  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function loadErrors(st) {
    if (!st.load_errors || !st.load_errors.length) return null;
    return el('section', { class: 'card error' }, el('h2', null, 'Workflow files that did not load'),
      el('ul', { class: 'diags' }, ...st.load_errors.flatMap((le) => le.errors.map((d) => el('li', null,
        el('code', null, d.text || d.message),
        le.workflow ? el('span', { class: 'muted' }, ' (the last good version of ' + le.workflow + ' stays in use)') : null)))));
  }
  function workflowTable(list, strips) {
    if (!list.length) {
      return section('Workflows', el('p', { class: 'muted' },
        'No workflows yet. Put a workflow file in the workflows directory, or run picoflowctl submit FILE.'));
    }
    const t = table(['Workflow', 'Last run', 'Last 20 runs', 'Schedule', 'Next fire', 'State'], 'wf-table');
    for (const w of list) {
      const last = w.last_run;
      const strip = el('span', { class: 'strip' });
      strips.set(w.name, strip);
      const state = [];
      if (!w.loaded) state.push(el('span', { class: 'tag' }, 'not loaded'));
      if (w.paused) state.push(el('span', { class: 'tag paused' }, 'paused'));
      if (w.running) state.push(el('span', { class: 'tag running' }, w.running + ' running'));
      if (!state.length) state.push(el('span', { class: 'muted' }, 'active'));
      const nameCell = el('td', { class: 'name' }, link(wfHref(w.name), w.name));
      if (w.description) nameCell.append(el('div', { class: 'muted small' }, w.description));
      if (w.errors && w.errors.length) {
        nameCell.append(el('div', { class: 'bad small' }, w.errors.length + ' load error(s): ' + w.errors[0].message));
      }
      t.tbody.append(el('tr', { class: 'wf-row', 'data-name': w.name, 'data-status': last ? last.status : 'none' },
        nameCell,
        el('td', null, last ? el('a', { href: runHref(last.id), class: 'plain' }, badge(last.status), ' ', when(last.started_at || last.created_at)) : el('span', { class: 'muted' }, 'never run')),
        el('td', null, strip),
        el('td', null, w.loaded === false ? '' : scheduleCell(w)),
        el('td', null, w.next_fire && !w.paused ? when(w.next_fire) : el('span', { class: 'muted' }, w.paused && w.next_fire ? 'paused' : '—')),
        el('td', null, ...state)));
    }
    return section('Workflows', t.wrap);
  }
  async function fillStrips(v, strips) {
    const names = [...strips.keys()];
    const worker = async () => {
      while (names.length && v.alive) {
        const name = names.shift();
        try {
          const res = await api('run.list', { workflow: name, limit: 20 });
          const s = strips.get(name);
          for (const r of res.runs.slice().reverse()) {
            s.append(el('a', { href: runHref(r.id), class: 'sq st-' + r.status,
              title: 'run ' + r.id + ' · ' + r.status + ' · ' + local(r.started_at || r.created_at) + (r.duration_ms != null ? ' · ' + fmtDur(r.duration_ms) : '') + (r.error ? ' · ' + r.error : ''),
              'aria-label': 'run ' + r.id + ' ' + r.status }));
          }
        } catch (e) { /* the strip stays empty */ }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  // ---------- Workflow page.
  async function workflowPage(v, name, q) {
    let wf = null;
    let notLoaded = '';
    try { wf = await api('workflow.get', { name }); } catch (e) {
      if (e.code !== -32001) throw e;
      notLoaded = e.message;
    }
    const [runs, next] = await Promise.all([
      api('run.list', { workflow: name, limit: 20 }),
      wf ? api('workflow.next', { name, count: 5 }).catch(() => null) : null]);
    if (!v.alive) return;
    if (!wf && !runs.runs.length) throw new Error(notLoaded);

    const head = el('div', { class: 'page-head' }, el('h1', null, name),
      wf && wf.paused ? el('span', { class: 'tag paused' }, 'paused') : null,
      notLoaded ? el('span', { class: 'tag' }, 'not loaded') : null);
    const out = [el('p', { class: 'crumbs' }, link('#/', 'Workflows'), ' / ', name), head];
    if (wf && wf.description) out.push(el('p', { class: 'muted' }, wf.description));
    if (wf) out.push(workflowActions(v, wf, runs.runs[0]));

    const graphBox = el('div', { class: 'graph-box' });
    const graphInfo = el('p', { class: 'muted small' });
    let graph = null;
    if (wf) {
      graph = drawDag(wf.tasks);
      graphBox.append(graph.svg);
      out.push(section('Graph', graphInfo, graphBox));
    }
    let pinned = !!q.get('run');  // the reader chose a run: the graph stays on it
    const selectRun = async (id, byReader) => {
      if (byReader) pinned = true;
      if (!graph) return;
      if (!id) { graphInfo.textContent = 'No run yet: nodes are grey.'; return; }
      const run = await api('run.get', { run_id: id });
      if (!v.alive) return;
      graph.colour(new Map(run.tasks.map((t) => [t.name, t.status])), id);
      graphInfo.replaceChildren('Coloured by ', link(runHref(id), 'run ' + id), ' (', badge(run.status), ', ', when(run.started_at || run.created_at), '). Pick another run below.');
    };
    const history = historySection(v, name, runs.runs, selectRun);
    out.push(history.section);
    if (wf) out.push(nextSection(wf, next), sourceSection(wf));
    main.replaceChildren(...out);
    await selectRun(+q.get('run') || (runs.runs[0] && runs.runs[0].id)).catch(() => {});
    // Every 5 s: the history's first page, and the graph follows the latest run (each
    // tick while it is live) unless the reader picked one.
    const key = (r) => (r ? r.id + ':' + r.status : '');
    let latest = key(runs.runs[0]);
    every(v, 5000, () => history.refresh().then(async (list) => {
      if (!list || !v.alive || !list[0]) return;
      const now = key(list[0]);
      if (!pinned && (now !== latest || LIVE.has(list[0].status))) await selectRun(list[0].id);
      latest = now;
    }).catch((e) => { if (e.status) flash('Refresh failed: ' + e.message, 'err', true); }));
  }

  function workflowActions(v, wf, latest) {
    const box = el('div', { class: 'actions' });
    const paramsBox = el('div', { class: 'params-box', hidden: true });
    const area = el('textarea', { rows: 4, 'aria-label': 'params', placeholder: 'name=value, one a line' });
    if (latest && latest.params) area.value = Object.entries(latest.params).map(([k, val]) => k + '=' + val).join('\n');
    const start = (params) => act('Run ' + wf.name, 'run.start', params ? { workflow: wf.name, params } : { workflow: wf.name },
      (res) => { location.hash = runHref(res.run_id); });
    paramsBox.append(el('label', { class: 'small muted' }, 'Params of the run (the latest run\'s values are filled in):'), area,
      button('Start with these params', () => {
        const params = {};
        for (const line of area.value.split('\n')) {
          const i = line.indexOf('=');
          if (i > 0) params[line.slice(0, i).trim()] = line.slice(i + 1);
        }
        start(params);
      }, 'primary'));
    // workflow.get has no params field: its source tells whether it declares any.
    const hasParams = /^params\s*:/m.test(wf.source || '') && !/^params\s*:\s*(\{\s*\}|~|null)?\s*(#.*)?$(?!\n[ \t])/m.test(wf.source || '');
    box.append(...[
      button('▶ Run now', () => start(null), 'primary run-now'),
      hasParams ? button('Run with params…', () => { paramsBox.hidden = !paramsBox.hidden; }, 'run-params') : null,
      wf.paused
        ? button('Resume schedule', () => act('Resume ' + wf.name, 'workflow.resume', { name: wf.name }, () => route()), 'resume')
        : ((wf.schedule && wf.schedule.length) || triggerKinds(wf).length
          ? button(wf.schedule && wf.schedule.length ? 'Pause schedule' : 'Pause triggers',
            () => act('Pause ' + wf.name, 'workflow.pause', { name: wf.name }, () => route()), 'pause') : null),
      hasParams ? paramsBox : null].filter(Boolean));
    return box;
  }

  function historySection(v, name, first, selectRun) {
    const t = table(['Run', 'Status', 'Trigger', 'Started', 'Duration', 'Error', 'Graph'], 'history');
    const pager = el('div', { class: 'pager' });
    const stack = [];  // the `before` of each earlier page
    let before = 0;
    const fill = (runs) => {
      t.tbody.replaceChildren(...runs.map((r) => el('tr', { 'data-run': r.id },
        el('td', null, link(runHref(r.id), '#' + r.id)),
        el('td', null, badge(r.status)),
        el('td', null, r.trigger + (r.retry_of ? ' (retry of #' + r.retry_of + ')' : '')),
        el('td', null, when(r.started_at || r.created_at)),
        el('td', { class: 'num' }, fmtDur(r.duration_ms)),
        el('td', { class: 'reason' }, r.error || r.reason || ''),
        el('td', null, button('show', () => selectRun(r.id, true).catch((e) => flash(e.message, 'err')), 'small')))));
      if (!runs.length) t.tbody.append(el('tr', null, el('td', { colspan: 7, class: 'muted' }, 'No runs.')));
      pager.replaceChildren(
        button('Newest', () => page(0, true), 'small'),
        button('← Newer', () => page(stack.pop() || 0, false), 'small'),
        el('span', { class: 'muted small pager-label' }, runs.length
          ? ' newest first: ' + (stack.length * 20 + 1) + '–' + (stack.length * 20 + runs.length) + ' ' : ' '),
        button('Older →', () => { if (runs.length === 20) { stack.push(before); page(runs[runs.length - 1].id, false); } }, 'small'));
      pager.children[1].disabled = !before;
      pager.children[0].disabled = !before;
      pager.children[3].disabled = runs.length < 20;
    };
    const page = async (b, reset) => {
      if (reset) stack.length = 0;
      const res = await api('run.list', { workflow: name, limit: 20, before: b || null });
      if (!v.alive) return;
      before = b;
      fill(res.runs);
    };
    fill(first);
    // The first page again, in place; nothing while the reader looks at older runs.
    const refresh = async () => {
      if (before) return null;
      const res = await api('run.list', { workflow: name, limit: 20 });
      if (!v.alive || before) return null;
      fill(res.runs);
      return res.runs;
    };
    return { section: section('Run history', t.wrap, pager), refresh };
  }

  function nextSection(wf, next) {
    const fires = next ? next.fires : [];
    const body = fires.length
      ? el('ol', { class: 'fires' }, ...fires.map((f) => el('li', null, whenLong(f))))
      : el('p', { class: 'muted' }, wf.schedule.length ? 'No fire to come.'
        : triggerKinds(wf).length ? 'No schedule: runs start by hand and ' + scheduleCell(wf).textContent + '.'
          : 'No schedule: runs start by hand.');
    return section('Next fires', el('p', null, wf.schedule.length ? scheduleCell(wf) : ''),
      wf.paused ? el('p', { class: 'muted' }, 'Paused: these are the fires it would have if resumed now.') : null, body);
  }

  function sourceSection(wf) {
    const lines = wf.source.replace(/\n$/, '').split('\n');
    const gutter = el('pre', { class: 'gutter', 'aria-hidden': 'true' });
    gutter.textContent = lines.map((_, i) => i + 1).join('\n');
    const code = el('pre', { class: 'code' });
    code.textContent = lines.join('\n');
    const origin = wf.origin === 'submitted' ? 'submitted' : 'file ' + wf.origin;
    const det = el('details', { class: 'source' }, el('summary', null, 'Source (' + origin + ', ' + lines.length + ' lines)'),
      el('div', { class: 'source-box' }, gutter, code));
    if (lines.length <= 200) det.open = true;
    return el('section', { class: 'card' }, el('h2', null, 'Source'), det);
  }

  // The DAG, layered left to right (the classic layered layout): a task's layer is the
  // longest path to it from a root; an edge that skips layers gets a dummy point in each layer
  // it crosses, so it runs in a lane of its own between the nodes, never through one; within a
  // layer, nodes and lanes are ordered by the barycenter of their neighbours (down, up, down
  // sweeps) to cut crossings. O(V + E + dummies), but for one sort per layer and sweep.
  function drawDag(tasks) {
    const W = 150, H = 28, GX = 60, GY = 12, LANE = 14, PAD = 10;
    const byName = new Map(tasks.map((t, i) => [t.name, { t, i, layer: 0, pos: 0, preds: [], succs: [] }]));
    const handlers = tasks.filter((t) => t.handler);
    const plain = tasks.filter((t) => !t.handler);
    const order = topo(plain, byName);
    for (const n of order) {
      for (const d of n.t.depends_on) { const p = byName.get(d); if (p) n.layer = Math.max(n.layer, p.layer + 1); }
    }
    const layers = [];
    for (const n of order) (layers[n.layer] = layers[n.layer] || []).push(n);
    if (handlers.length) {
      const hl = layers.length;
      layers.push(handlers.map((t) => { const n = byName.get(t.name); n.layer = hl; return n; }));
    }
    // Edges, each a chain of items: the dependency, a dummy per layer skipped, the task.
    const chains = [];
    for (const n of order) {
      for (const d of n.t.depends_on) {
        const p = byName.get(d);
        if (!p || p.layer >= n.layer) continue;
        const chain = [p];
        for (let l = p.layer + 1; l < n.layer; l++) {
          const dm = { dummy: true, layer: l, i: p.i, pos: 0, preds: [], succs: [] };
          layers[l].push(dm);
          chain.push(dm);
        }
        chain.push(n);
        for (let k = 1; k < chain.length; k++) { chain[k].preds.push(chain[k - 1]); chain[k - 1].succs.push(chain[k]); }
        chains.push({ from: p, to: n, chain });
      }
    }
    layers.forEach((layer) => layer.forEach((n, i) => { n.pos = i; }));
    const sweep = (list, side) => {
      for (const layer of list) {
        for (const n of layer) {
          const nb = n[side];
          n.key = nb.length ? nb.reduce((s, p) => s + p.pos, 0) / nb.length : n.pos;
        }
        layer.sort((a, b) => a.key - b.key || a.pos - b.pos);
        layer.forEach((n, i) => { n.pos = i; });
      }
    };
    const rev = layers.slice().reverse();
    sweep(layers, 'preds');
    sweep(rev, 'succs');
    sweep(layers, 'preds');
    // Heights: a node takes H + GY, a lane LANE; short layers are centred against the tallest.
    const size = (n) => (n.dummy ? LANE : H + GY);
    const heights = layers.map((l) => l.reduce((s, n) => s + size(n), 0) - (l.length ? GY : 0));
    const tall = Math.max(H, ...heights);
    const width = PAD * 2 + layers.length * W + Math.max(0, layers.length - 1) * GX;
    const height = PAD * 2 + tall;
    const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: 'auto-start-reverse', markerUnits: 'userSpaceOnUse' }, svg('path', { d: 'M0 0L10 5L0 10z', class: 'arrow' }));
    const edges = svg('g', { class: 'edges' });
    const nodes = svg('g', { class: 'nodes' });
    const root = svg('svg', { class: 'dag', width, height, viewBox: '0 0 ' + width + ' ' + height, role: 'img',
      'aria-label': 'task graph: ' + tasks.length + ' tasks' }, svg('defs', null, marker), edges, nodes);
    layers.forEach((layer, li) => {
      let y = PAD + (tall - heights[li]) / 2;
      const x = PAD + li * (W + GX);
      for (const n of layer) {
        n.x = x;
        n.y = y;
        n.cy = y + (n.dummy ? LANE / 2 : H / 2);
        y += size(n);
      }
    });
    const c = GX / 2;
    const frag = document.createDocumentFragment();
    for (const { from, to, chain } of chains) {
      let x = from.x + W, y = from.cy;
      let d = `M${x} ${y}`;
      for (let k = 1; k < chain.length; k++) {
        const n = chain[k], x2 = n.x, y2 = n.cy;
        d += y2 === y ? `L${x2} ${y2}` : `C${x + c} ${y} ${x2 - c} ${y2} ${x2} ${y2}`;
        if (n.dummy) d += `L${n.x + W} ${y2}`;
        x = n.x + W; y = y2;
      }
      frag.append(svg('path', { class: 'edge', d, 'marker-end': 'url(#arrow)', 'data-from': from.t.name, 'data-to': to.t.name }));
    }
    edges.append(frag);
    const els = new Map();
    const nfrag = document.createDocumentFragment();
    for (const n of byName.values()) {
      if (n.x == null) continue;
      const label = n.t.name.length > 20 ? n.t.name.slice(0, 19) + '…' : n.t.name;
      const title = svg('title');
      title.textContent = n.t.name + (n.t.handler ? ' (' + n.t.handler + ')' : '');
      const g = svg('g', { class: 'node st-none' + (n.t.handler ? ' handler' : ''), 'data-task': n.t.name,
        transform: `translate(${n.x} ${n.y})` }, title,
      svg('rect', { width: W, height: H, rx: 6 }), svg('text', { x: 10, y: H / 2 + 4 }, label));
      nfrag.append(g);
      els.set(n.t.name, { g, title });
    }
    nodes.append(nfrag);
    return {
      svg: root,
      colour(statuses, runId) {
        for (const [name, e] of els) {
          const st = statuses.get(name) || 'none';
          e.g.setAttribute('class', 'node st-' + st + (e.g.classList.contains('handler') ? ' handler' : ''));
          e.title.textContent = name + ': ' + st.replace('_', ' ') + ' in run ' + runId;
        }
        for (const e of els.values()) e.g.onclick = null;
        root.onclick = (ev) => {
          const g = ev.target.closest('g.node');
          if (g) location.hash = runHref(runId) + '?task=' + encodeURIComponent(g.dataset.task);
        };
      },
    };
  }
  // Kahn's order of the tasks (the daemon's `order` would do; this keeps the page on its own).
  function topo(tasks, byName) {
    const indeg = new Map(tasks.map((t) => [t.name, 0]));
    const kids = new Map(tasks.map((t) => [t.name, []]));
    for (const t of tasks) for (const d of t.depends_on) if (kids.has(d)) { kids.get(d).push(t.name); indeg.set(t.name, indeg.get(t.name) + 1); }
    const q = tasks.filter((t) => !indeg.get(t.name)).map((t) => t.name);
    const out = [];
    for (let i = 0; i < q.length; i++) {
      out.push(byName.get(q[i]));
      for (const k of kids.get(q[i])) { indeg.set(k, indeg.get(k) - 1); if (!indeg.get(k)) q.push(k); }
    }
    return out;
  }

  // ---------- Run page.
  async function runPage(v, id, q) {
    let run = await api('run.get', { run_id: id });
    if (!v.alive) return;
    const tasks = new Map(run.tasks.map((t) => [t.name, t]));
    const headBox = el('div');
    const taskTbl = taskTable(v, run.tasks, (name) => logs.show(name));
    const timelineBox = el('div', { class: 'timeline-box' });
    const logs = logView(v, run, q.get('task') || '');
    const outputsBox = el('div');
    const drawHead = () => headBox.replaceChildren(...runHead(v, run));
    const drawRest = () => {
      timelineBox.replaceChildren(drawTimeline(run));
      outputsBox.replaceChildren(paramsAndOutputs(run) || '');
    };
    drawHead();
    drawRest();
    main.replaceChildren(headBox, outputsBox, section('Tasks', taskTbl.wrap),
      section('Timeline', el('p', { class: 'muted small' }, 'One row per task, one bar per attempt; a dashed gap is a wait before a retry; a dotted gap follows an attempt interrupted by a daemon stop.'), timelineBox),
      logs.section);
    await logs.load();
    if (!v.alive || !LIVE.has(run.status)) return;

    // Live: follow the run's output and events; refresh the whole run now and then.
    let refreshTimer = 0;
    const refresh = () => {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(async () => {
        try {
          run = await api('run.get', { run_id: id });
          if (!v.alive) return;
          for (const t of run.tasks) { tasks.set(t.name, t); taskTbl.update(t); }
          drawHead();
          drawRest();
          logs.setRun(run);
          if (!LIVE.has(run.status)) logs.live(false);
        } catch (e) { if (v.alive) drawHead(); /* says so when the daemon is gone; next time */ }
      }, 700);
    };
    v.stops.push(() => clearTimeout(refreshTimer));
    every(v, 2000, () => { if (LIVE.has(run.status)) refresh(); });
    // The stream ends with the run, or when the daemon goes away: then it is opened again
    // (from the last chunk shown) once the daemon answers.
    let following = false;
    const startFollow = () => {
      if (following || !v.alive || !LIVE.has(run.status)) return;
      following = true;
      logs.live(true);
      follow(v, 'run.logs', { run_id: id, follow: true, after: logs.cursor() }, onNote, (m) => {
        following = false;
        logs.live(false);
        refresh();
        if (!m && v.alive) setTimeout(() => { if (!offline) startFollow(); }, 1500);
      });
    };
    v.reconnect = () => { refresh(); startFollow(); };
    const onNote = (m) => {
      if (m.method === 'run.output') logs.add(m.params);
      else if (m.method === 'run.event') {
        const p = m.params;
        const t = tasks.get(p.task);
        if (t) {
          t.status = p.status;
          t.attempts = Math.max(t.attempts, p.attempt);
          if (p.exit_code != null) t.exit_code = p.exit_code;
          if (p.error != null) t.error = p.error;
          if (p.duration_ms != null) t.duration_ms = p.duration_ms;
          if (p.event === 'started' && !t.started_at) t.started_at = new Date().toISOString();
          taskTbl.update(t);
        }
        refresh();
      }
    };
    startFollow();
  }

  // Opens an SSE stream of a following method; `done` gets the final answer. The stream is
  // closed on that answer, else EventSource would reconnect and replay the call.
  function follow(v, method, params, onNote, done) {
    const es = new EventSource(apiUrl(method, params));
    let finished = false;
    v.stops.push(() => es.close());
    es.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if ('id' in m) {
        finished = true;
        es.close();
        if (m.error) flash('Live view ended: ' + m.error.message, 'err');
        done(m);
      } else if (v.alive) onNote(m);
    };
    es.onerror = () => {
      if (finished) return;
      es.close();
      finished = true;
      done(null);
    };
  }

  function runHead(v, run) {
    const live = LIVE.has(run.status);
    const actions = el('div', { class: 'actions' });
    if (live) {
      actions.append(button('■ Cancel run', () => {
        if (window.confirm('Cancel run ' + run.id + ' of ' + run.workflow + '? Its running tasks are stopped.')) {
          act('Cancel run ' + run.id, 'run.cancel', { run_id: run.id });
        }
      }, 'danger cancel'));
    }
    if (!live && run.status !== 'succeeded') {
      actions.append(button('↻ Retry failed', () => act('Retry run ' + run.id, 'run.retry', { run_id: run.id },
        (res) => { location.hash = runHref(res.run_id); }), 'retry'));
    }
    const params = run.params || {};
    const np = Object.keys(params).length;
    actions.append(button(np ? '▶ Run again with the same params' : '▶ Run workflow again',
      () => act('Run ' + run.workflow, 'run.start', np ? { workflow: run.workflow, params } : { workflow: run.workflow },
        (res) => { location.hash = runHref(res.run_id); }), 'run-again'));
    const facts = [
      ['trigger', run.trigger], ['event', eventText(run.event)], ['created', whenLong(run.created_at)],
      ['scheduled', run.scheduled_at ? whenLong(run.scheduled_at) : null],
      ['started', whenLong(run.started_at)], ['ended', run.ended_at ? whenLong(run.ended_at) : (live ? 'still running' : '—')],
      ['duration', run.duration_ms != null ? fmtDur(run.duration_ms) : (run.started_at && live ? fmtDur(Date.now() - Date.parse(run.started_at)) + (offline ? ' when last seen (picoflowd not reachable)' : ' so far') : '—')],
      ['late', run.late_ms != null ? fmtDur(run.late_ms) : null],
      ['retry of', run.retry_of ? link(runHref(run.retry_of), 'run ' + run.retry_of) : null],
      ['only', run.only ? run.only.tasks.join(', ') + (run.only.with ? ' (with ' + run.only.with + ')' : '') : null],
      ['reason', run.reason || null], ['error', run.error || null],
    ].filter(([, x]) => x != null);
    return [
      el('p', { class: 'crumbs' }, link('#/', 'Workflows'), ' / ', link(wfHref(run.workflow), run.workflow), ' / run ' + run.id),
      el('div', { class: 'page-head' }, el('h1', null, 'Run #' + run.id + ' · ', run.workflow), badge(run.status)),
      actions,
      el('section', { class: 'card' }, el('dl', { class: 'facts' }, ...facts.flatMap(([k, x]) =>
        [el('dt', null, k), el('dd', { class: k === 'error' ? 'bad run-error' : null }, x)]))),
    ];
  }

  function paramsAndOutputs(run) {
    const params = Object.entries(run.params || {});
    const outs = run.tasks.filter((t) => t.outputs && Object.keys(t.outputs).length);
    if (!params.length && !outs.length) return null;
    const kv = (entries) => el('dl', { class: 'facts' }, ...entries.flatMap(([k, x]) => [el('dt', null, k), el('dd', null, el('code', null, String(x)))]));
    return el('section', { class: 'card' },
      params.length ? el('h2', null, 'Params') : null, params.length ? kv(params) : null,
      outs.length ? el('h2', null, 'Outputs') : null,
      ...outs.map((t) => el('div', null, el('h3', null, t.name), kv(Object.entries(t.outputs)))));
  }

  // The task table; rows past the first screenful are added in chunks on later frames, so a
  // run of thousands of tasks shows at once and stays responsive.
  function taskTable(v, list, onPick) {
    const t = table(['Task', 'Status', 'Attempts', 'Started', 'Duration', 'Exit', 'Reason'], 'tasks');
    const rows = new Map();
    const row = (task) => {
      const tr = el('tr', { class: 'task-row', 'data-task': task.name, 'data-status': task.status });
      fillRow(tr, task);
      return tr;
    };
    const fillRow = (tr, task) => {
      tr.dataset.status = task.status;
      tr.replaceChildren(
        el('td', { class: 'name' }, el('a', { href: '#', onclick: (e) => { e.preventDefault(); onPick(task.name); } }, task.name)),
        el('td', null, badge(task.status)),
        el('td', { class: 'num' }, String(task.attempts)),
        el('td', null, when(task.started_at)),
        el('td', { class: 'num' }, fmtDur(task.duration_ms)),
        el('td', { class: 'num' }, task.exit_code == null ? '' : String(task.exit_code)),
        el('td', { class: 'reason' }, task.error || ''));
    };
    const FIRST = 100, CHUNK = 300;
    let next = 0;
    const addChunk = (n) => {
      const frag = document.createDocumentFragment();
      const end = Math.min(list.length, next + n);
      for (; next < end; next++) { const tr = row(list[next]); rows.set(list[next].name, tr); frag.append(tr); }
      t.tbody.append(frag);
      if (next < list.length && v.alive) setTimeout(() => addChunk(CHUNK), 16);
    };
    addChunk(FIRST);
    return {
      wrap: el('div', { class: 'task-scroll' }, t.wrap),
      update(task) { const tr = rows.get(task.name); if (tr) fillRow(tr, task); },
    };
  }

  // Gantt of the attempts: a row per task that ran, a bar per attempt on one time axis.
  function drawTimeline(run) {
    if (!run.attempts.length) return el('p', { class: 'muted' }, 'No attempt yet.');
    const now = Date.now();
    const byTask = new Map();
    let t0 = Infinity, t1 = 0;
    for (const a of run.attempts) {
      const s = Date.parse(a.started_at), e = a.ended_at ? Date.parse(a.ended_at) : now;
      t0 = Math.min(t0, s); t1 = Math.max(t1, e);
      if (!byTask.has(a.task)) byTask.set(a.task, []);
      byTask.get(a.task).push({ a, s, e });
    }
    const span = Math.max(t1 - t0, 1);
    const L = 150, RH = 18, TOP = 22;
    const W = Math.max(560, Math.min(1400, main.clientWidth - 74));
    const plot = W - L - 12;
    const H = TOP + byTask.size * RH + 6;
    const x = (ms) => L + ((ms - t0) / span) * plot;
    const root = svg('svg', { class: 'gantt', width: W, height: H, viewBox: `0 0 ${W} ${H}` });
    const axis = svg('g', { class: 'axis' });
    // Ticks at round steps (1, 2 or 5 x 10^n ms), at most one per 90 px.
    const want = span / Math.max(1, Math.floor(plot / 90));
    const mag = Math.pow(10, Math.floor(Math.log10(want)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= want) || 10 * mag;
    for (let i = 0; i * step <= span + 1e-6; i++) {
      const ms = i * step, xx = L + (ms / span) * plot;
      axis.append(svg('line', { x1: xx, x2: xx, y1: TOP - 4, y2: H }),
        svg('text', { x: xx, y: 12, 'text-anchor': ms === 0 ? 'start' : (xx > W - 40 ? 'end' : 'middle'), class: 'tick', 'data-ms': ms },
          ms === 0 ? '0' : '+' + fmtDur(ms)));
    }
    root.append(axis);
    let row = 0;
    for (const [task, bars] of byTask) {
      const y = TOP + row * RH;
      const name = svg('text', { x: 4, y: y + RH - 5, class: 'label' }, task.length > 22 ? task.slice(0, 21) + '…' : task);
      root.append(name);
      for (let i = 1; i < bars.length; i++) {
        const intr = bars[i - 1].a.status === 'interrupted';
        const t = svg('title');
        t.textContent = intr ? 'attempt ' + bars[i - 1].a.number + ' interrupted (daemon stopped), then started again'
          : 'wait before retry ' + bars[i].a.number;
        root.append(svg('line', { class: intr ? 'wait interrupted' : 'wait', x1: x(bars[i - 1].e), x2: x(bars[i].s), y1: y + RH / 2, y2: y + RH / 2 }, t));
      }
      for (const { a, s, e } of bars) {
        const title = svg('title');
        title.textContent = task + ' · attempt ' + a.number + ' · ' + a.status + ' · ' + fmtDur(e - s) + (a.error ? ' · ' + a.error : '');
        root.append(svg('rect', { class: 'bar st-' + a.status, x: x(s), y: y + 3, width: Math.max(2, x(e) - x(s)), height: RH - 6, rx: 2 }, title));
      }
      row++;
    }
    return el('div', { class: 'scroll gantt-scroll' }, root);
  }

  // The run's output: every chunk, with a marker where the task or attempt changes; one task
  // or all. Filled from run.logs pages, then live from the stream.
  function logView(v, run, initialTask) {
    const chunks = [];
    let cursor = 0;
    let filter = initialTask;
    let lastKey = '';
    const seen = new Set();  // the attempts whose header is shown
    let atts = new Map();
    const setAtts = (r) => { atts = new Map(r.attempts.map((a) => [a.task + '\u0000' + a.number, a])); };
    setAtts(run);
    const pre = el('pre', { class: 'log', id: 'log', 'aria-live': 'polite' });
    const select = el('select', { 'aria-label': 'task', onchange: () => { filter = select.value; redraw(); } },
      el('option', { value: '' }, 'all tasks'), ...run.tasks.map((t) => el('option', { value: t.name }, t.name)));
    select.value = filter;
    const liveTag = el('span', { class: 'tag running', hidden: !LIVE.has(run.status) }, 'live');
    const note = el('p', { class: 'muted small' });
    // Output cut at the output cap: a line where the attempt's stored output ends.
    const dropped = (key) => {
      const a = atts.get(key);
      if (!a) return;
      const n = (a.stdout_dropped || 0) + (a.stderr_dropped || 0);
      if (n > 0) {
        if (pre.lastChild && !/\n$/.test(pre.lastChild.textContent)) pre.append('\n');
        pre.append(el('span', { class: 'dropped' }, '… ' + n + ' bytes not kept (output_cap)\n'));
      }
    };
    const header = (task, n) => {
      const prev = atts.get(task + '\u0000' + (n - 1)), a = atts.get(task + '\u0000' + n);
      let t = '── ' + task + ' · attempt ' + n;
      if (prev && prev.status === 'interrupted') t += ' (started again after an interruption)';
      else if (n > 1) t += ' (retry)';
      if (a && a.status === 'interrupted') t += ' · interrupted';
      return t + ' ──\n';
    };
    const put = (c, last) => {
      if (filter && c.task !== filter) return;
      const key = c.task + '\u0000' + c.attempt;
      if (key !== lastKey) {
        lastKey = key;
        if (pre.lastChild && !/\n$/.test(pre.lastChild.textContent)) pre.append('\n');
        // The full header once per attempt; when output of attempts alternates, a short tag.
        if (!seen.has(key)) { seen.add(key); pre.append(el('span', { class: 'mark' }, header(c.task, c.attempt))); }
        else pre.append(el('span', { class: 'mark2' }, '[' + c.task + (c.attempt > 1 ? ' #' + c.attempt : '') + '] '));
      }
      const text = c.data.replace(ANSI, '');
      if (c.stream === 'stderr') pre.append(el('span', { class: 'stderr' }, text));
      else pre.append(text);
      if (last) dropped(key);
    };
    const redraw = () => {
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
      pre.replaceChildren();
      lastKey = '';
      seen.clear();
      const end = new Map();
      chunks.forEach((c, i) => end.set(c.task + '\u0000' + c.attempt, i));
      chunks.forEach((c, i) => put(c, end.get(c.task + '\u0000' + c.attempt) === i));
      if (!pre.firstChild) pre.append(el('span', { class: 'muted' }, 'No output.'));
      if (stick) pre.scrollTop = pre.scrollHeight;
    };
    return {
      section: section('Logs', el('div', { class: 'row' }, select, liveTag), note, pre),
      cursor: () => cursor,
      show(name) { filter = name; select.value = name; redraw(); pre.scrollIntoView({ block: 'nearest' }); },
      live(on) { liveTag.hidden = !on; },
      setRun(r) {
        const before = [...atts.values()].map((a) => a.status + (a.stdout_dropped + a.stderr_dropped)).join();
        setAtts(r);
        if ([...atts.values()].map((a) => a.status + (a.stdout_dropped + a.stderr_dropped)).join() !== before) redraw();
      },
      add(c) {
        if (c.seq != null) { if (c.seq <= cursor) return; cursor = c.seq; }
        chunks.push(c);
        const empty = pre.firstChild && pre.firstChild.classList && pre.firstChild.classList.contains('muted');
        if (empty) pre.replaceChildren();
        const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
        put(c);
        if (stick) pre.scrollTop = pre.scrollHeight;
      },
      async load() {
        if (LIVE.has(run.status)) { redraw(); return; }  // the stream replays the stored output
        for (let page = 0; page < 64; page++) {
          const res = await api('run.logs', { run_id: run.id, after: cursor, limit: 1000 });
          if (!v.alive) return;
          for (const c of res.chunks) chunks.push(c);
          cursor = res.next;
          if (!res.chunks.length) break;
          if (page === 63) note.textContent = 'Output truncated here: the first 64 pages are shown.';
        }
        redraw();
      },
    };
  }

  route();
})();
