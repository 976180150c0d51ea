// lpd dashboard: the page itself. Builds and updates the DOM from model.js's
// state, and the controls that act (pause decisions, the log panel).
// Every text from lpd goes in as textContent or an attribute value set
// through the DOM, never as HTML.
import { AuthError, op, wsUrl } from './lpd_api.js';
import {
  COUNTED, MAX_CRASHES_SHOWN, MAX_RUNS_SHOWN, byShownOrder, countsOf, printableLog, printableText, procKey, state,
} from './model.js';

const LOG_TAIL_LINES = 200;
const LOG_TAIL_CHARS = 256 * 1024;  // the log panel keeps this much of the newest text

export const $ = (id) => document.getElementById(id);

let onAuthError = () => {};

/// `authError(error)`: what to do when lpd refuses the token (an AuthError).
export function initView(authError) {
  onAuthError = authError;
  $('log-close').addEventListener('click', closeLog);
  // The countdowns of pending pauses.
  setInterval(() => {
    for (const card of pauseCards.values()) updatePause(card.node, card.pause);
  }, 1000);
}

let renderPending = false;
/// One render per animation frame however many events came (a hidden tab
/// renders when it is shown again).
export function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(renderNow);
}

export function renderNow() {
  renderPending = false;
  renderPauses();
  renderRuns();
  renderCrashes();
  renderProcs();
}

export function setConnection(which, text) {
  const node = $('connection');
  node.dataset.state = which;
  node.textContent = text;
  document.body.dataset.connection = which;
}

/// Said to screen readers (the page's polite live region).
export function announce(text) {
  if (text) $('announcer').textContent = text;
}

/// A new element: `attrs` are set as attributes (class, data-*, aria-*,
/// ...; true as "", false/null left out), `children` appended, strings as
/// text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return node;
}

/// Puts the nodes for `items` into `list` in order, keeping the node of
/// each key that stays (so focus, typed text and open <details> survive):
/// `make(item)` builds a node, `update(node, item)` refreshes one.
function syncList(list, items, keyOf, make, update) {
  const old = new Map();
  for (const node of list.children) old.set(node.dataset.key, node);
  const wanted = new Set();
  items.forEach((item, i) => {
    const key = keyOf(item);
    wanted.add(key);
    let node = old.get(key);
    if (!node) {
      node = make(item);
      node.dataset.key = key;
    }
    if (update) update(node, item);
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
  for (const [key, node] of old) if (!wanted.has(key)) node.remove();
}

const fmtTime = (seconds) => (typeof seconds === 'number' ? new Date(seconds * 1000).toLocaleTimeString() : '');
const fmtDuration = (seconds) => {
  if (typeof seconds !== 'number') return '';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.round(seconds / 60)} min`;
};

/// `text` cut to 300 characters, "…" at the end when cut (the whole goes
/// in the element's title).
const shortLine = (text) => (text.length > 300 ? text.slice(0, 300) + '…' : text);

function setCount(id, n) {
  $(id + '-count').textContent = String(n);
  $(id + '-empty').hidden = n > 0;
}

// -- runs ------------------------------------------------------------------
function makeRun(run) {
  const counts = el('dl', { class: 'counts', 'aria-label': 'Test counts' });
  for (const name of COUNTED) {
    counts.append(el('div', { class: name }, el('dt', {}, name), el('dd', { 'data-count': name }, '0')));
  }
  return el('li', { class: 'run', 'data-run-id': run.id },
    el('div', { class: 'run-head' },
      el('span', { class: 'badge status' }),
      el('h3', { class: 'run-id' }, run.id),
      el('span', { class: 'badge paused', hidden: true }, 'paused'),
      el('span', { class: 'job' })),
    el('p', { class: 'argv mono' }),
    counts,
    el('p', { class: 'running' }),
    el('ol', { class: 'latest', 'aria-label': `Latest tests of run ${run.id}` }));
}

function jobText(run) {
  const job = run.job;
  if (job) {
    if (job.text) return `${job.state || ''}: ${job.text}`;
    if (job.returncode !== null && job.returncode !== undefined) return `${job.state || ''} (exit ${job.returncode})`;
    return job.state || '';
  }
  if (run.record.ended_at) return `ended ${fmtTime(run.record.ended_at)}`;
  if (run.record.created_at) return `started ${fmtTime(run.record.created_at)}`;
  return '';
}

function updateRun(node, run) {
  const status = run.record.status || 'active';
  const badge = node.querySelector('.status');
  badge.textContent = status;
  badge.className = 'badge status ' + (status === 'active' ? 'active' : 'ended');
  node.dataset.status = status;
  const paused = [...state.pauses.values()].some((p) => p.run_id === run.id);
  node.querySelector('.badge.paused').hidden = !paused;
  node.querySelector('.job').textContent = jobText(run);
  node.dataset.jobState = run.job && run.job.state ? run.job.state : '';
  // argv_line: model.js's keptRunRecord, a bounded line.
  const argv = node.querySelector('.argv');
  const argvLine = run.record.argv_line || '';
  if (argv.textContent !== argvLine) argv.textContent = argvLine;
  argv.hidden = !argvLine;
  const counts = countsOf(run);
  for (const name of COUNTED) {
    const dd = node.querySelector(`[data-count="${name}"]`);
    if (dd.textContent !== String(counts[name])) dd.textContent = String(counts[name]);
  }
  // An ended run runs nothing (a crashed test never finished).
  const running = status === 'active' ? [...run.running.values()].map((t) => t.nodeid) : [];
  const runningNode = node.querySelector('.running');
  const runningText = running.length ? `running: ${running.join(', ')}` : '';
  if (runningNode.textContent !== runningText) {
    runningNode.textContent = runningText;
    runningNode.title = runningText;  // the whole text where the card cuts it (style.css)
  }
  runningNode.hidden = running.length === 0;
  syncList(node.querySelector('.latest'), run.latest, (t) => String(t.seq),
    (t) => el('li', { 'data-nodeid': t.nodeid, 'data-outcome': t.outcome },
      el('span', { class: `outcome ${t.outcome}` }, t.outcome || ''),
      el('span', { class: 'nodeid mono', title: t.nodeid }, t.nodeid),
      el('span', { class: 'duration' }, fmtDuration(t.duration))));
}

function renderRuns() {
  const sorted = [...state.runs.values()].sort((a, b) => byShownOrder(a.record, b.record));
  const runs = sorted.slice(0, MAX_RUNS_SHOWN);
  // A page left open for days forgets the runs it no longer shows.
  for (const old of sorted.slice(MAX_RUNS_SHOWN)) if (old.record.status === 'ended') state.runs.delete(old.id);
  syncList($('runs'), runs, (r) => r.id, makeRun, updateRun);
  setCount('runs', runs.length);
}

// -- pauses ----------------------------------------------------------------
let controlIds = 0;
const pauseCards = new Map();  // pause_id -> {node, error, buttons, pause}

function makePause(p) {
  const id = `pause-${++controlIds}`;
  const error = el('p', { class: 'error', role: 'alert' });
  const isCheckpoint = p.kind === 'checkpoint';
  const reasonId = `${id}-reason`;
  const reason = el('input', { id: reasonId, type: 'text', autocomplete: 'off', spellcheck: 'false' });
  const buttons = [];
  const title = p.nodeid || '(no test)';
  const button = (action, text, label, fields, primary) => {
    const b = el('button', { type: 'button', class: primary ? 'primary' : null, 'aria-label': label, 'data-action': action },
      text);
    b.addEventListener('click', () => resume(p.pause_id, fields, card));
    buttons.push(b);
    return b;
  };
  let controls;
  if (isCheckpoint) {
    // lpctl resume ID --result true|false|none [--reason TEXT]
    controls = el('div', { class: 'controls' },
      el('div', { class: 'field' }, el('label', { for: reasonId }, 'Reason (optional, returned to the test)'), reason),
      button('result-true', 'Pass', `Pass checkpoint ${title} (result true)`,
        () => ({ result: true, reason: reason.value }), true),
      button('result-false', 'Fail', `Fail checkpoint ${title} (result false)`,
        () => ({ result: false, reason: reason.value })),
      button('result-none', 'No result', `No result for checkpoint ${title} (none)`,
        () => ({ result: null, reason: reason.value })));
  } else {
    // lpctl resume ID [--failure-reason TEXT]
    const failWithReason = button('fail-with-reason', 'Fail with reason', `Fail with reason: ${title}`, () => {
      if (!reason.value.trim()) throw new Error('Type the reason first: lpd adds it to the failure report.');
      return { failure_reason: reason.value };
    });
    reason.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && reason.value.trim()) failWithReason.click();
    });
    controls = el('div', { class: 'controls' },
      button('resume', 'Resume', `Resume ${title}`, () => ({}), true),
      el('div', { class: 'field' }, el('label', { for: reasonId }, 'Failure reason (added to the report)'), reason),
      failWithReason);
  }
  const what = isCheckpoint
    ? el('p', { class: 'task' }, 'Checkpoint task: ', el('strong', {}, p.task || '(none given)'))
    : el('pre', { class: 'failure', 'aria-label': `Failure of ${title}` },
      p.original_failure ? printableText(p.original_failure) : '(no failure text)');
  const node = el('li', { class: 'pause', 'data-pause-id': p.pause_id, 'data-kind': p.kind || 'failure',
    'aria-labelledby': `${id}-title` },
  el('h3', { id: `${id}-title`, class: 'mono nodeid', title }, title),
  el('p', { class: 'meta' }),
  what,
  controls,
  error);
  const card = { node, error, buttons, pause: p };
  pauseCards.set(p.pause_id, card);
  return node;
}

function updatePause(node, p) {
  const card = pauseCards.get(p.pause_id);
  if (card) card.pause = p;
  const parts = [`${p.kind || 'failure'} pause ${p.pause_id}`];
  if (p.run_id) parts.push(`run ${p.run_id}`);
  if (p.worker_id) parts.push(`worker ${p.worker_id}`);
  if (p.hostname) parts.push(`on ${p.hostname}`);
  if (typeof p.created_at === 'number') parts.push(`since ${fmtTime(p.created_at)}`);
  if (typeof p.created_at === 'number' && typeof p.timeout === 'number') {
    const left = Math.max(0, Math.round(p.created_at + p.timeout - Date.now() / 1000));
    parts.push(`times out in ${left} s`);
  }
  node.querySelector('.meta').textContent = parts.join(' · ');
  const rejection = state.pauseRejections.get(p.pause_id);
  if (card && rejection && !card.error.textContent) card.error.textContent = `lpd refused a command file: ${rejection}`;
}

function renderPauses() {
  const pauses = [...state.pauses.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
  syncList($('pauses'), pauses, (p) => p.pause_id, makePause, updatePause);
  for (const id of [...pauseCards.keys()]) if (!state.pauses.has(id)) pauseCards.delete(id);
  setCount('pauses', pauses.length);
}

/// pause.resume with the fields `makeFields()` gives (it throws to refuse).
async function resume(pauseId, makeFields, card) {
  let fields;
  card.error.textContent = '';
  try {
    fields = makeFields();
  } catch (e) {
    card.error.textContent = e.message;
    return;
  }
  for (const b of card.buttons) b.disabled = true;
  try {
    await op('pause.resume', Object.assign({ pause_id: pauseId }, fields));
    // The pause.resumed frame removes it too; this is for a slow socket.
    const focused = card.node.contains(document.activeElement);
    state.pauses.delete(pauseId);
    renderNow();
    announce(`Resumed ${card.pause.nodeid || pauseId}.`);
    if (focused) $('pauses-title').focus();
  } catch (e) {
    if (e instanceof AuthError) { onAuthError(e); return; }
    card.error.textContent = e.message;
    for (const b of card.buttons) b.disabled = false;
  }
}

// -- crashes ---------------------------------------------------------------
function makeCrash(c) {
  const what = c.signal_name || (c.exit_code !== null && c.exit_code !== undefined ? `exit ${c.exit_code}` : 'crash');
  const where = c.nodeid || `(${c.where || 'outside a test'})`;
  const body = [el('p', { class: 'meta' },
    `run ${c.run_id || '?'} · ${c.worker_id || 'controller'} · pid ${c.pid || '?'} · ${fmtTime(c.crash_time)}` +
    (c.phase ? ` · ${c.phase}` : '') + (c.flaky ? ' · flaky (passed when run again)' : ''))];
  if (c.reason) body.push(el('p', { class: 'reason' }, c.reason));
  if (c.traceback) body.push(el('pre', { class: 'traceback', 'aria-label': `Traceback of ${where}` }, c.traceback));
  else if (c.redacted) body.push(el('p', { class: 'meta' }, 'Another user\'s crash: only its metadata is shown.'));
  else body.push(el('p', { class: 'meta' }, 'No traceback came.'));
  return el('li', { class: 'crash', 'data-crash-id': c.crash_id },
    el('details', {},
      el('summary', {}, el('span', { class: 'signal' }, what), ' ', el('span', { class: 'mono', title: where }, shortLine(where))),
      ...body));
}

function renderCrashes() {
  const crashes = [...state.crashes.values()].sort((a, b) => b.crash_id - a.crash_id).slice(0, MAX_CRASHES_SHOWN);
  syncList($('crashes'), crashes, (c) => String(c.crash_id), makeCrash, null);
  setCount('crashes', crashes.length);
}

// -- helper processes and their log ------------------------------------------
function makeProc(p) {
  const name = p.full_name || p.name;
  const button = el('button', { type: 'button', 'aria-pressed': 'false', 'aria-label': `Log of ${name}` }, 'Log');
  button.addEventListener('click', () => {
    if (logView.key === procKey(p)) closeLog(); else openLog(p);
  });
  return el('li', { class: 'proc', 'data-proc': name },
    el('span', { class: 'state' }), el('span', { class: 'name' }, name), el('span', { class: 'meta' }), button);
}

function updateProc(node, p) {
  const st = node.querySelector('.state');
  st.textContent = p.state || '';
  st.className = `state ${p.state || ''}`;
  const bits = [];
  if (p.pid) bits.push(`pid ${p.pid}`);
  if (p.owner !== undefined) bits.push(`uid ${p.owner}`);
  if (p.exit_status && p.exit_status.description) bits.push(p.exit_status.description);
  node.querySelector('.meta').textContent = bits.join(' · ');
  node.querySelector('button').setAttribute('aria-pressed', logView.key === procKey(p) ? 'true' : 'false');
}

function renderProcs() {
  const running = (p) => (['starting', 'ready', 'stopping'].includes(p.state) ? 0 : 1);
  const procs = [...state.procs.values()].sort((a, b) => running(a) - running(b) || (b.started_at || 0) - (a.started_at || 0));
  syncList($('procs'), procs, procKey, makeProc, updateProc);
  setCount('procs', procs.length);
}

/// The log panel follows one helper's log on a WebSocket of its own
/// (proc.logs with follow): closing that socket ends the stream in lpd.
const logView = { key: null, socket: null, text: '', carried: '' };

function openLog(p) {
  closeLog();
  const name = p.full_name || p.name;
  logView.key = procKey(p);
  logView.text = '';
  logView.carried = '';
  $('log').hidden = false;
  $('log-title').textContent = `Log of ${name}`;
  $('log-text').textContent = '';
  $('log-status').textContent = 'connecting…';
  renderProcs();
  const ws = new WebSocket(wsUrl());
  logView.socket = ws;
  ws.addEventListener('open', () => {
    const fields = { full_name: name, lines: LOG_TAIL_LINES, follow: true };
    if (typeof p.owner === 'number') fields.owner = p.owner;
    ws.send(JSON.stringify({ id: 1, op: 'proc.logs', fields }));
  });
  ws.addEventListener('message', (event) => {
    if (ws !== logView.socket) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    const d = frame && frame.payload;
    if (!d || typeof d !== 'object') return;
    if (frame.type === 'reply' && d.id === 1) {
      $('log-status').textContent = d.ok ? (d.result && d.result.following ? 'following' : 'as it is now')
        : `lpd refused: ${(d.error && d.error.message) || 'error'}`;
    } else if (d.event === 'proc.log' && typeof d.data === 'string') {
      appendLog(d.data);
    } else if (d.event === 'proc.log_end') {
      const end = d.exit_status && d.exit_status.description ? ` (${d.exit_status.description})` : '';
      $('log-status').textContent = `ended: ${d.state || ''}${end}`;
    }
  });
  ws.addEventListener('close', () => {
    if (ws !== logView.socket) return;
    logView.socket = null;
    if (!$('log-status').textContent.startsWith('ended')) $('log-status').textContent = 'disconnected';
  });
}

function appendLog(text) {
  const pre = $('log-text');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const [shown, carried] = printableLog(logView.carried + text);
  logView.carried = carried;
  logView.text += shown;
  if (logView.text.length > LOG_TAIL_CHARS) logView.text = logView.text.slice(-LOG_TAIL_CHARS);
  pre.textContent = logView.text;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

export function closeLog() {
  if (logView.socket) { const s = logView.socket; logView.socket = null; s.close(); }
  const had = logView.key !== null;
  logView.key = null;
  $('log').hidden = true;
  if (had) renderProcs();
}
