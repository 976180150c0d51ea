// lpd dashboard: plain JavaScript modules, no framework, no
// network but lpd. This one signs in, keeps the WebSocket, and loads the
// state; lpd_api.js talks to lpd, model.js holds what the page knows,
// view.js draws it.
//
// The state comes from POST /api/op/<op> (run.list, pause.list, proc.list,
// then per run events.list, crash.list, run.info), read each time the
// WebSocket /ws opens; from then on every change comes over /ws as
// {"type", "payload"} frames. Frames that arrive while the state loads wait
// in a queue and are applied after it, in order (model.js: applying a frame
// the state already holds changes nothing).
import { AuthError, allPages, eachEventPage, inPool, op, session, wsUrl } from './lpd_api.js';
import {
  addCrash, applyFrame, applyTestEvent, keptRunRecord, procKey, resetState, runOf, shownRuns, state,
} from './model.js';
import { $, announce, closeLog, initView, renderNow, scheduleRender, setConnection } from './view.js';

const LOAD_CONCURRENCY = 4;  // per-run requests in flight at once while loading

const link = {
  socket: null,
  live: false,          // the state is loaded: frames apply at once
  queue: [],            // frames received while loading
  loadGeneration: 0,    // a newer load makes an older one stop
  reconnectDelay: 1000,
  reconnectTimer: null,
};

// -- the WebSocket -----------------------------------------------------------
function connect() {
  clearTimeout(link.reconnectTimer);
  setConnection('connecting', 'connecting…');
  link.live = false;
  link.queue = [];
  let opened = false;
  const ws = new WebSocket(wsUrl());
  link.socket = ws;
  ws.addEventListener('open', () => {
    opened = true;
    link.reconnectDelay = 1000;
    load();
  });
  ws.addEventListener('message', (event) => {
    if (ws !== link.socket) return;
    let frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (!frame || typeof frame !== 'object') return;
    if (link.live) apply(frame); else link.queue.push(frame);
  });
  ws.addEventListener('close', () => {
    if (ws !== link.socket) return;
    link.socket = null;
    link.live = false;
    // A browser does not say why an upgrade failed: ask lpd whether the
    // token is the reason before trying again.
    op('ping', {}).then(() => scheduleReconnect(opened), (e) => {
      if (e instanceof AuthError) refused(e); else scheduleReconnect(opened);
    });
  });
}

function scheduleReconnect(wasOpen) {
  const seconds = Math.round(link.reconnectDelay / 1000);
  setConnection('down', `${wasOpen ? 'connection lost' : 'cannot connect'}; trying again in ${seconds} s`);
  link.reconnectTimer = setTimeout(signIn, link.reconnectDelay);
  link.reconnectDelay = Math.min(link.reconnectDelay * 2, 15000);
}

/// One frame from /ws.
function apply(frame) {
  if (frame.type === 'lpd') {
    // Frames were dropped (this page was too slow): the state may be
    // stale, so take it again.
    if (frame.payload && frame.payload.notice === 'dropped') load();
    return;
  }
  announce(applyFrame(frame));
  scheduleRender();
}

// -- loading -----------------------------------------------------------------
/// Loads the whole state (the WebSocket is open, so nothing that happens
/// from now on is missed), then applies the frames queued meanwhile.
async function load() {
  const generation = ++link.loadGeneration;
  const current = () => generation === link.loadGeneration;
  link.live = false;
  setConnection('connecting', 'loading…');
  try {
    // Oldest first, every page (the newest come last), keeping only the
    // runs shown: memory stays bounded however long lpd's history.
    let runs = [];
    await allPages('run.list', { all: true, limit: 1000 }, 'runs', (page) => {
      runs = shownRuns(runs.concat(page.map(keptRunRecord)));
    }, Infinity);
    if (!current()) return;
    $('auth').hidden = true;
    $('main').hidden = false;
    resetState();
    for (const record of runs) runOf(record.run_id).record = record;
    renderNow();
    if (!document.body.dataset.runsLoaded) {
      // The first render with data: bench/dashboard_bench.py reads this mark.
      document.body.dataset.runsLoaded = 'true';
      if (window.performance && performance.mark) performance.mark('lpd-runs-rendered');
    }

    const [pauses, procs] = await Promise.all([
      allPages('pause.list', {}, 'pauses'),
      allPages('proc.list', { all: true }, 'processes'),
    ]);
    if (!current()) return;
    for (const pause of pauses) if (pause.status === 'pending') state.pauses.set(pause.pause_id, pause);
    for (const proc of procs) state.procs.set(procKey(proc), proc);
    // Live from here: what came meanwhile, then each frame as it comes.
    const queued = link.queue;
    link.queue = [];
    for (const frame of queued) apply(frame);
    link.live = true;
    setConnection('live', 'live');
    renderNow();

    // In the background: the shown runs' test events so far (counts,
    // latest tests), their crashes and jobs. Live frames may come first:
    // each applies by seq or id, so older history changes nothing they set.
    const tasks = [async () => {
      await loadTestHistory([...state.runs.values()].map((r) => r.record), current);
      scheduleRender();
    }];
    for (const run of state.runs.values()) {
      const runId = run.id;
      tasks.push(async () => {
        await allPages('crash.list', { run_id: runId, limit: 1000 }, 'crashes', (crashes) => {
          if (current()) for (const c of crashes) addCrash(c);
        });
        scheduleRender();
      });
      if (run.record.supervised) {
        tasks.push(async () => {
          const info = await op('run.info', { run_id: runId });
          if (!current() || run.job) return;
          run.job = { state: info.state, text: info.text, returncode: info.returncode };
          scheduleRender();
        });
      }
    }
    await inPool(tasks, LOAD_CONCURRENCY);
    if (!current()) return;
    renderNow();
    if (!document.body.dataset.loaded && window.performance && performance.mark) performance.mark('lpd-loaded');
    document.body.dataset.loaded = 'true';
  } catch (e) {
    if (!current()) return;
    if (e instanceof AuthError) {
      refused(e);
    } else {
      setConnection('down', `loading failed: ${e.message}`);
      if (link.socket) link.socket.close();  // the close handler tries again
    }
  }
}

/// The test events of the runs of `records`, in one pass over lpd's
/// journal from the oldest one's run.started on (one filtered list per run
/// would read the whole journal once per run).
async function loadTestHistory(records, current) {
  if (records.length === 0) return;
  const oldest = records.reduce((a, b) => ((b.created_at || 0) < (a.created_at || 0) ? b : a));
  let since;
  await eachEventPage({ run_id: oldest.run_id, types: ['run.started'] }, (events) => {
    if (events.length === 0) return true;
    since = events[0].data.seq - 1;
    return false;
  }, current);
  if (!current()) return;
  const shown = new Set(records.map((r) => r.run_id));
  const fields = { types: ['test.'] };
  if (since !== undefined) fields.since = since;
  await eachEventPage(fields, (events) => {
    for (const e of events) {
      if (e.data && shown.has(e.data.run_id)) applyTestEvent(Object.assign({ event: e.event }, e.data));
    }
    scheduleRender();
    return true;
  }, current);
}

// -- signing in ----------------------------------------------------------------
/// The sign-in form, saying `message`. The page stops talking to lpd until
/// a token is given: nothing is retried on its own.
function showAuth(message) {
  clearTimeout(link.reconnectTimer);
  if (link.socket) { const s = link.socket; link.socket = null; s.close(); }
  link.loadGeneration++;
  closeLog();
  setConnection('down', 'not signed in');
  $('main').hidden = true;
  $('auth').hidden = false;
  $('auth-message').textContent = message;
  document.body.dataset.auth = 'refused';
  $('auth-token').focus();
}

/// lpd answered 401 to the token `e.token`: it is forgotten (kept, it would
/// be refused again at every load) and the form asks for the current one.
function refused(e) {
  if (session.token === e.token) session.token = null;
  showAuth('lpd refused the token this page had: it was replaced (lpctl dashboard --rotate, or http.token '
    + 'deleted and lpd restarted). Run lpctl dashboard for your current token and give it below.');
}

/// Checks the token with a ping, then opens the WebSocket (and loads the
/// state). A token lpd refuses goes back to the form; lpd not answering is
/// tried again later.
function signIn() {
  if (!session.token) {
    showAuth('This page has no token: it keeps none once it is reloaded or closed. Run lpctl dashboard '
      + 'for a fresh link and paste it into the address bar, or paste the token below.');
    return;
  }
  setConnection('connecting', 'signing in…');
  const token = session.token;
  op('ping', {}).then(() => {
    if (session.token !== token) return;  // the form gave another one meanwhile
    connect();
  }, (e) => {
    if (e instanceof AuthError) refused(e);
    else scheduleReconnect(false);
  });
}

/// The token in the address, `#token=` (lpctl dashboard's link: a fragment
/// never reaches a server, a log or a Referer) or `?token=`, or null. Either
/// leaves the address bar and this page's history entry at once.
function tokenFromAddress() {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token') || query.get('token');
  if (!query.has('token') && !fragment.has('token')) return null;
  query.delete('token');
  fragment.delete('token');
  const rest = query.toString();
  const hash = fragment.toString();
  history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + (hash ? '#' + hash : ''));
  return token || null;
}

/// A token given to the page: it replaces the one held, and signs in.
function useToken(token) {
  session.token = token;
  delete document.body.dataset.auth;
  $('auth').hidden = true;
  clearTimeout(link.reconnectTimer);
  if (link.socket) { const s = link.socket; link.socket = null; s.close(); }
  link.loadGeneration++;
  signIn();
}

function start() {
  initView(refused);
  $('auth-url').textContent = `${location.origin}/#token=TOKEN`;
  // The token lives in this variable only, for the page's life: never in
  // localStorage, sessionStorage or a cookie, where whoever serves this
  // origin next (another local user's server on lpd's old port, once lpd
  // moved or stopped) could read it.
  session.token = tokenFromAddress();
  // Where an older version of this page kept it: gone, so the next server
  // on this port finds nothing there either.
  try { localStorage.removeItem('lpd.http.token'); } catch (e) { /* storage off */ }
  // A link from lpctl dashboard pasted into this tab's address bar changes
  // only the fragment: no reload, so it is taken here.
  window.addEventListener('hashchange', () => {
    const token = tokenFromAddress();
    if (token) useToken(token);
  });
  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('auth-token').value.trim();
    if (!value) return;
    $('auth-token').value = '';
    useToken(value);
  });
  signIn();
}

start();
