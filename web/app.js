// taskpool dashboard: plain JS against /api/v1/ (docs/http.md). Every value reaches the page
// through textContent (never innerHTML with data), so nothing a task holds can run as markup.
// The token comes from the URL once (?token=...), is kept in sessionStorage and removed from the
// address bar.
'use strict';

(() => {
  const KEY = 'taskpool-token';
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    sessionStorage.setItem(KEY, params.get('token'));
    params.delete('token');
    const q = params.toString();
    history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + location.hash);
  }
  const token = sessionStorage.getItem(KEY) || '';

  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const status = (msg) => { $('status-line').textContent = msg; };

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: 'Bearer ' + token } };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body || {});
    }
    const res = await fetch('/api/v1/' + path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = (data && data.error) || res.statusText;
      throw new Error(res.status === 401 ? 'not authorized: open the dashboard URL the daemon printed' : msg);
    }
    return data;
  }
  const report = (e) => status('error: ' + e.message);

  // Times arrive as "2026-11-22 07:36:22.826+00:00".
  const parseTime = (t) => (t ? new Date(t.replace(' ', 'T')) : null);
  const fmtTime = (t) => {
    const d = parseTime(t);
    if (!d || isNaN(d)) return t || '';
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const fmtIn = (t) => {
    const d = parseTime(t);
    if (!d) return '';
    let s = Math.round((d - Date.now()) / 1000);
    const sign = s < 0 ? '-' : '';
    s = Math.abs(s);
    if (s < 60) return sign + s + 's';
    if (s < 3600) return sign + Math.floor(s / 60) + 'm' + (s % 60) + 's';
    return sign + Math.floor(s / 3600) + 'h' + Math.floor((s % 3600) / 60) + 'm';
  };
  const fmtSecs = (v) => (v === null || v === undefined ? '–' : v < 1 ? Math.round(v * 1000) + ' ms' : v.toFixed(2) + ' s');
  const handlerOf = (t) => t.exec_task || t.task_type;
  const firstLine = (s) => (s ? String(s).split('\n')[0].slice(0, 200) : '');

  // ---- tabs ----
  let tab = 'overview';
  for (const b of document.querySelectorAll('#tabs button')) {
    b.addEventListener('click', () => {
      tab = b.dataset.tab;
      for (const o of document.querySelectorAll('#tabs button')) o.classList.toggle('active', o === b);
      for (const s of document.querySelectorAll('.tab')) s.classList.toggle('active', s.id === tab);
      refresh();
    });
  }

  // ---- overview ----
  async function loadOverview() {
    const o = await api('GET', 'overview');
    for (const s of ['waiting', 'running', 'done', 'failed', 'cancelled']) $('count-' + s).textContent = o.stats[s];
    $('unacked').textContent = o.stats.unacked_reports;
    $('next-due').textContent = o.stats.next_due ? fmtTime(o.stats.next_due) : '–';
    $('due-now').textContent = o.due_now + (o.due_now_capped ? '+' : '');
    $('due-later').textContent = Math.max(0, o.stats.waiting - o.due_now) + (o.due_now_capped ? '?' : '');
    const h = o.runs.last_hour;
    $('hour-done').textContent = h.done;
    $('hour-failed').textContent = h.failed;
    $('hour-rate').textContent = h.done + h.failed ? ((100 * h.failed) / (h.done + h.failed)).toFixed(1) + '%' : '–';
    $('hour-note').textContent = o.daemon ? '(this daemon)' : '(watcher: no runs here)';
    const spark = $('spark');
    spark.replaceChildren();
    const max = Math.max(1, ...h.per_minute.map(([d, f]) => d + f));
    for (const [d, f] of h.per_minute) {
      const bar = el('div', null, 'bar');
      bar.style.height = (100 * (d + f)) / max + '%';
      bar.title = `${d} done, ${f} failed`;
      const fail = el('div', null, 'fail');
      fail.style.height = d + f ? (100 * f) / (d + f) + '%' : '0';
      bar.append(fail);
      spark.append(bar);
    }
    for (const [k, p] of [['sd', 'start_delay'], ['rt', 'run_time']])
      for (const q of ['p50', 'p90', 'p99']) $(`${k}-${q}`).textContent = fmtSecs(o.runs[p][q]);
  }

  // ---- tasks ----
  let cursor = {};        // {after_id} or {before_id} of the page shown
  let pageNext = null;    // the server's cursor for the next (older) page
  let pageIds = [];
  const history_ = [];    // cursors of the newer pages, for "newer"
  const selected = new Set();

  function filter() {
    const f = {};
    for (const [k, v] of new FormData($('filter'))) if (v) f[k] = v;
    return f;
  }
  async function loadTasks() {
    const q = new URLSearchParams({ ...filter(), order: 'newest', limit: '50', ...cursor });
    const r = await api('GET', 'tasks?' + q);
    pageNext = r.next;
    pageIds = r.tasks.map((t) => t.id);
    const rows = $('task-rows');
    rows.replaceChildren();
    for (const t of r.tasks) {
      const tr = el('tr');
      tr.dataset.id = t.id;
      const box = el('input');
      box.type = 'checkbox';
      box.checked = selected.has(t.id);
      box.addEventListener('click', (e) => {
        e.stopPropagation();
        if (box.checked) selected.add(t.id); else selected.delete(t.id);
      });
      const c = el('td');
      c.append(box);
      tr.append(c, el('td', t.id), el('td', t.task_status, 's-' + t.task_status), el('td', handlerOf(t)),
        el('td', fmtTime(t.exec_time)), el('td', `${t.attempts}/${t.max_attempts}`), el('td', t.creator_id),
        el('td', firstLine(t.last_error), 'err'));
      tr.addEventListener('click', () => openDetail(t.id));
      rows.append(tr);
    }
    $('older').disabled = !pageNext;
    $('newer').disabled = history_.length === 0;
  }
  $('filter').addEventListener('submit', (e) => {
    e.preventDefault();
    cursor = {};
    history_.length = 0;
    selected.clear();
    loadTasks().catch(report);
  });
  $('f-status').addEventListener('change', () => $('filter').requestSubmit());
  $('older').addEventListener('click', () => {
    if (!pageNext) return;
    history_.push(cursor);
    cursor = pageNext;
    loadTasks().catch(report);
  });
  $('newer').addEventListener('click', () => {
    cursor = history_.pop() || {};
    loadTasks().catch(report);
  });
  $('select-all').addEventListener('change', (e) => {
    for (const id of pageIds) if (e.target.checked) selected.add(id); else selected.delete(id);
    loadTasks().catch(report);
  });
  async function bulk(action, body, what) {
    const r = await api('POST', 'tasks/' + action, body);
    status(`${action}: ${r.count} of ${what}`);
    selected.clear();
    await refresh();
  }
  $('retry-selected').addEventListener('click', () => bulk('retry', { ids: [...selected] }, 'the selection').catch(report));
  $('cancel-selected').addEventListener('click', () => bulk('cancel', { ids: [...selected] }, 'the selection').catch(report));
  const confirmAll = (verb) => window.confirm(`${verb} every task matching the filter?`);
  $('retry-all').addEventListener('click', () => confirmAll('Retry') && bulk('retry', { filter: filter() }, 'the filter').catch(report));
  $('cancel-all').addEventListener('click', () => confirmAll('Cancel') && bulk('cancel', { filter: filter() }, 'the filter').catch(report));

  // ---- task detail ----
  let detailId = null;
  async function openDetail(id) {
    detailId = id;
    await loadDetail().catch(report);
  }
  async function loadDetail() {
    if (detailId === null) return;
    const { task: t, reports } = await api('GET', 'tasks/' + detailId);
    $('detail').hidden = false;
    $('d-id').textContent = t.id;
    const badge = $('d-status');
    badge.textContent = t.task_status;
    badge.className = 'badge s-' + t.task_status;
    const dl = $('d-fields');
    dl.replaceChildren();
    const fields = [['handler', handlerOf(t)], ['type', t.task_type], ['creator', t.creator_id], ['group', t.group_id],
      ['level', t.task_level], ['attempts', `${t.attempts}/${t.max_attempts}`], ['exec time', fmtTime(t.exec_time)],
      ['every', t.repeat_every], ['unique key', t.unique_key], ['lease', t.lease_owner ? `${t.lease_owner} until ${fmtTime(t.lease_until)}` : null],
      ['created', fmtTime(t.create_time)], ['updated', fmtTime(t.updated_time)]];
    for (const [k, v] of fields) {
      if (v === null || v === undefined || v === '') continue;
      dl.append(el('dt', k), el('dd', v));
    }
    $('d-error').textContent = t.last_error || '';
    $('d-result').textContent = t.result || '';
    $('d-payload').textContent = JSON.stringify(t.payload, null, 2);
    const tl = $('d-timeline');
    tl.replaceChildren();
    tl.append(el('li', `${fmtTime(t.create_time)} created`));
    for (const r of [...reports].reverse())
      tl.append(el('li', `${fmtTime(r.created_time)} ${r.status}${r.error ? ': ' + firstLine(r.error) : ''}`));
    if (t.task_status === 'running') tl.append(el('li', `running now (attempt ${t.attempts}), lease until ${fmtTime(t.lease_until)}`));
    if (t.task_status === 'waiting') tl.append(el('li', `next run ${fmtTime(t.exec_time)} (in ${fmtIn(t.exec_time)})`));
    $('d-retry').disabled = !['done', 'failed', 'cancelled'].includes(t.task_status);
    $('d-cancel').disabled = !['waiting', 'running'].includes(t.task_status);
    $('d-extend').disabled = t.task_status !== 'waiting';
    $('d-delete').disabled = t.task_status === 'running';
  }
  const act = (fn) => () => fn().then(refresh).catch(report);
  $('d-retry').addEventListener('click', act(() => api('POST', `tasks/${detailId}/retry`)));
  $('d-cancel').addEventListener('click', act(() => api('POST', `tasks/${detailId}/cancel`)));
  $('d-extend').addEventListener('click', act(() => api('POST', `tasks/${detailId}/extend`, { by: $('d-by').value })));
  $('d-delete').addEventListener('click', act(async () => {
    await api('DELETE', `tasks/${detailId}`);
    detailId = null;
    $('detail').hidden = true;
  }));
  $('d-close').addEventListener('click', () => {
    detailId = null;
    $('detail').hidden = true;
  });

  // ---- repeating, leases, keys (pages of live rows) ----
  async function live(statuses) {
    const out = [];
    for (const s of statuses) out.push(...(await api('GET', `tasks?status=${s}&limit=1000`)).tasks);
    return out;
  }
  function fill(tbody, rows) {
    const body = $(tbody);
    body.replaceChildren();
    for (const [t, cells] of rows) {
      const tr = el('tr');
      for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
      tr.addEventListener('click', () => openDetail(t.id));
      body.append(tr);
    }
  }
  async function loadRepeating() {
    const ts = (await live(['waiting', 'running'])).filter((t) => t.repeat_every);
    ts.sort((a, b) => parseTime(a.exec_time) - parseTime(b.exec_time));
    fill('repeat-rows', ts.map((t) => [t, [t.id, handlerOf(t), t.repeat_every, `${fmtTime(t.exec_time)} (in ${fmtIn(t.exec_time)})`,
      el('td', t.task_status, 's-' + t.task_status), el('td', firstLine(t.last_error), 'err')]]));
  }
  async function loadLeases() {
    const ts = await live(['running']);
    fill('lease-rows', ts.map((t) => [t, [t.id, handlerOf(t), t.lease_owner || '', `${fmtTime(t.lease_until)} (in ${fmtIn(t.lease_until)})`, t.attempts]]));
  }
  async function loadKeys() {
    const ts = (await live(['waiting', 'running'])).filter((t) => t.unique_key);
    ts.sort((a, b) => parseTime(a.exec_time) - parseTime(b.exec_time));
    fill('key-rows', ts.map((t) => [t, [t.unique_key, t.id, el('td', t.task_status, 's-' + t.task_status), fmtTime(t.exec_time), fmtIn(t.exec_time)]]));
  }

  // ---- nodes ----
  async function loadNodes() {
    const { nodes } = await api('GET', 'nodes');
    const body = $('node-rows');
    body.replaceChildren();
    for (const n of nodes) {
      const tr = el('tr');
      const actions = el('td');
      const toggle = el('button', n.paused ? 'Resume' : 'Pause');
      toggle.addEventListener('click', act(() => api('POST', 'daemon/' + (n.paused ? 'resume' : 'pause'))));
      const size = el('input');
      size.size = 3;
      size.value = n.threads;
      size.setAttribute('aria-label', 'threads');
      const resize = el('button', 'Resize');
      resize.addEventListener('click', act(() => api('POST', 'daemon/resize', { threads: Number(size.value) })));
      if (n.self) actions.append(toggle, size, resize);  // the API steers only the daemon serving this page
      tr.append(el('td', n.owner), el('td', n.host), el('td', n.pid), el('td', n.threads), el('td', n.busy), el('td', n.queued),
        el('td', n.in_flight), el('td', n.paused ? 'paused' : 'claiming'), el('td', fmtTime(n.heartbeat)), actions);
      body.append(tr);
    }
    $('nodes-note').textContent = nodes.length ? 'Pause, resume and resize act on the daemon serving this page.' : 'No live daemon on this database.';
  }

  // ---- refresh loop ----
  const loaders = { overview: loadOverview, tasks: loadTasks, repeating: loadRepeating, nodes: loadNodes, leases: loadLeases, keys: loadKeys };
  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      await loaders[tab]();
      await loadDetail();
      status('updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      report(e);
    } finally {
      busy = false;
    }
  }
  setInterval(() => {
    if (document.hidden) return;
    if (tab === 'tasks' && !$('live').checked) return;
    refresh();
  }, 2000);
  if (!token) status('no token: open the dashboard URL the daemon printed (…/?token=…)');
  refresh();
})();
