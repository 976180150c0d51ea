// lpd dashboard: what the page knows, and how each frame from lpd changes it.
// No DOM here. Every change sets a state the frame names (a run's status, a
// pause's end, a test's latest outcome by seq, a record by its id), so a
// frame applied twice, or history applied after newer live frames, changes
// nothing.

export const MAX_RUNS_SHOWN = 50;     // newest runs shown, active ones first
export const LATEST_TESTS = 8;        // finished tests listed per run
export const MAX_CRASHES_SHOWN = 50;

export const state = {
  runs: new Map(),             // run_id -> Run (newRun)
  pauses: new Map(),           // pause_id -> pending pause record
  pauseRejections: new Map(),  // pause_id -> why lpd refused a command file for it
  crashes: new Map(),          // crash_id -> crash record
  procs: new Map(),            // procKey -> process record
};

/// Forgets everything (a new load fills it again).
export function resetState() {
  state.runs = new Map();
  state.pauses = new Map();
  state.pauseRejections = new Map();
  state.crashes = new Map();
  state.procs = new Map();
}

/// A run as the page keeps it: lpd's record, its job, and what its test
/// events said so far.
function newRun(runId) {
  return {
    id: runId,
    record: { run_id: runId },
    job: null,
    outcomes: new Map(),   // nodeid -> {outcome, seq}: the latest finish of each test
    crashIds: new Set(),
    latest: [],            // newest first: {seq, nodeid, outcome, duration}
    running: new Map(),    // worker_id -> {nodeid, seq} of a test started and not finished
  };
}

/// Characters of a run's command line the page keeps and shows: a run may
/// have megabytes of arguments (lpctl run, POST /jobs), which would make
/// every render of its card copy them.
export const ARGV_SHOWN = 300;

/// `argv` (a run record's) as one line of at most ARGV_SHOWN characters,
/// "…" at the end when cut; reads only the elements it shows.
export function argvLine(argv) {
  if (!Array.isArray(argv)) return '';
  let line = '';
  for (const arg of argv) {
    const piece = (line ? ' ' : '') + (typeof arg === 'string' ? arg : String(arg));
    if (line.length + piece.length > ARGV_SHOWN) return line + piece.slice(0, ARGV_SHOWN - line.length) + '…';
    line += piece;
  }
  return line;
}

/// A run record as the page keeps it: `argv` replaced by `argv_line`
/// (argvLine's, shown as text), so no run's arguments stay in memory whole.
export function keptRunRecord(record) {
  const kept = Object.assign({}, record);
  delete kept.argv;
  kept.argv_line = printableText(argvLine(record.argv)).replace(/\n/g, ' ');
  if (record.argv_truncated) kept.argv_line = kept.argv_line.replace(/…?$/, '…');
  return kept;
}

export function runOf(runId) {
  let run = state.runs.get(runId);
  if (!run) {
    run = newRun(runId);
    state.runs.set(runId, run);
  }
  return run;
}

/// A helper is known by its owner and full name.
export const procKey = (p) => `${p.owner}\u0000${p.full_name || p.name}`;

/// Active runs first, then the newest by creation.
export function byShownOrder(a, b) {
  const rank = (r) => ((r.status || 'active') === 'active' ? 1 : 0);
  return rank(b) - rank(a) || (b.created_at || 0) - (a.created_at || 0);
}

/// The run records the page shows: active ones, then the newest ended ones.
export function shownRuns(records) {
  return records.slice().sort(byShownOrder).slice(0, MAX_RUNS_SHOWN);
}

/// One WebSocket frame {"type", "payload"}; returns what the page should
/// say aloud (a new pause), or ''.
export function applyFrame(frame) {
  const p = frame.payload;
  if (!p || typeof p !== 'object') return '';
  switch (frame.type) {
    case 'job':
      // lpd's `job` event (event "job", flat or nested in payload) has a
      // status phrase as text; a relay-run job message (no event) has the
      // process output there, which this page does not show.
      if (p.event === 'job') applyJob(p.payload && typeof p.payload === 'object' ? p.payload : p, true);
      else applyJob(p, false);
      return '';
    case 'run': applyRunEvent(p); return '';
    case 'test': applyTestEvent(p); return '';
    case 'pause': return applyPauseEvent(p);
    case 'crash': addCrash(p); return '';
    case 'process': applyProcessEvent(p); return '';
    default: return '';
  }
}

export function applyJob(job, withText) {
  if (typeof job.id !== 'string') return;
  const run = runOf(job.id);
  const text = withText ? job.text : run.job && run.job.state === job.state ? run.job.text : '';
  run.job = { state: job.state, text, returncode: job.returncode };
}

function applyRunEvent(p) {
  if (typeof p.run_id !== 'string') return;
  if (p.event === 'run.started') {
    runOf(p.run_id).record = keptRunRecord(p);
  } else if (p.event === 'run.ended') {
    const run = runOf(p.run_id);
    run.record = Object.assign({}, run.record, { status: 'ended', ended_at: p.ended_at });
    run.running.clear();
  }
}

/// test.start / test.finish (live, or from events.list with `event` added).
export function applyTestEvent(p) {
  if (typeof p.run_id !== 'string' || typeof p.nodeid !== 'string') return;
  const run = runOf(p.run_id);
  const seq = typeof p.seq === 'number' ? p.seq : 0;
  const worker = p.worker_id || 'controller';
  const now = run.running.get(worker);
  if (p.event === 'test.start') {
    if (!now || now.seq < seq) run.running.set(worker, { nodeid: p.nodeid, seq });
  } else if (p.event === 'test.finish') {
    if (now && now.seq < seq) run.running.delete(worker);
    const before = run.outcomes.get(p.nodeid);
    if (!before || before.seq < seq) run.outcomes.set(p.nodeid, { outcome: p.outcome, seq });
    if (!run.latest.some((t) => t.seq === seq)) {
      run.latest.push({ seq, nodeid: p.nodeid, outcome: p.outcome, duration: p.duration });
      run.latest.sort((a, b) => b.seq - a.seq);
      run.latest.length = Math.min(run.latest.length, LATEST_TESTS);
    }
  }
}

function applyPauseEvent(p) {
  if (typeof p.pause_id !== 'string') return '';
  if (p.event === 'pause.command_rejected') {
    state.pauseRejections.set(p.pause_id, p.message || 'a command file was refused');
  } else if (p.event === 'pause.created' || p.status === 'pending') {
    state.pauses.set(p.pause_id, p);
    if (p.event === 'pause.created') return `Test ${p.nodeid || ''} paused: it waits for a decision.`;
  } else if (p.event === 'pause.resumed' || p.event === 'pause.timed_out' || p.event === 'pause.stale') {
    state.pauses.delete(p.pause_id);
    state.pauseRejections.delete(p.pause_id);
  }
  return '';
}

/// A crash counts for its run; the newest MAX_CRASHES_SHOWN records are
/// kept whole (a traceback may be 256 KiB).
export function addCrash(c) {
  if (typeof c.crash_id !== 'number') return;
  if (typeof c.run_id === 'string' && state.runs.has(c.run_id)) state.runs.get(c.run_id).crashIds.add(c.crash_id);
  state.crashes.set(c.crash_id, c);
  if (state.crashes.size > 2 * MAX_CRASHES_SHOWN) {
    const keep = new Set([...state.crashes.keys()].sort((a, b) => b - a).slice(0, MAX_CRASHES_SHOWN));
    for (const id of [...state.crashes.keys()]) if (!keep.has(id)) state.crashes.delete(id);
  }
}

function applyProcessEvent(p) {
  if (typeof p.event !== 'string' || !p.event.startsWith('process.')) return;
  const key = procKey(p);
  state.procs.set(key, Object.assign({}, state.procs.get(key), p));
}

export const COUNTED = ['passed', 'failed', 'error', 'skipped', 'crashed'];

/// A run's counts: each test once, by its latest result; crashes by record.
export function countsOf(run) {
  const counts = { passed: 0, failed: 0, error: 0, skipped: 0, crashed: run.crashIds.size };
  for (const { outcome } of run.outcomes.values()) {
    if (outcome === 'passed') counts.passed++;
    else if (outcome === 'failed') counts.failed++;
    else if (outcome === 'skipped') counts.skipped++;
    else counts.error++;  // error, interrupted
  }
  return counts;
}

// Terminal escape sequences in a helper's log: CSI (colours, cursor moves),
// OSC (titles, links; ended by BEL or ESC \), and ESC with one final byte.
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]|\x9b[0-?]*[ -/]*[@-~]/g;
// The start of one cut at the end of a chunk (or a CR whose LF may follow).
const CUT_AT_END = /(?:\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)|\r)$/;
const MAX_CARRIED = 256;

/// Text from a program (a helper's log, a test's failure text) as the page
/// shows it: terminal escape sequences dropped, CR LF and a lone CR as LF,
/// every other control character but tab and LF as U+FFFD (a terminal
/// would act on them; the page shows text).
export function printableText(text) {
  return String(text).replace(ESCAPES, '').replace(/\r\n?/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, '\ufffd');
}

/// A chunk of a helper's log as printableText shows it. Returns [shown,
/// carried]: `carried` is a sequence or CR cut at the chunk's end, to put
/// before the next chunk.
export function printableLog(chunk) {
  let carried = '';
  const cut = CUT_AT_END.exec(chunk);
  if (cut && cut[0].length <= MAX_CARRIED) {
    carried = cut[0];
    chunk = chunk.slice(0, chunk.length - carried.length);
  }
  return [printableText(chunk), carried];
}
