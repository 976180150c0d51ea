// lpd dashboard: talking to lpd. POST /api/op/<op> for operations, the
// WebSocket /ws for everything live, and the token that opens both.

/// How this page proves who it is: lpd's token, sent as
/// `Authorization: Bearer` on every request and as ?token= on the
/// WebSocket's address (a browser sets no header on a WebSocket). It comes
/// from the address (#token= or ?token=) or the form, and is held here,
/// in memory, for the page's life only. Never a cookie (a browser sends
/// cookies for 127.0.0.1 to every port, so another local user's server
/// would get them), nor this origin's storage: the origin is a port, and
/// once lpd moves to another port or stops, whoever binds the old one
/// serves this origin and reads its storage.
export const session = {
  token: null,
};

/// Pages of one list read at a time (a bound on a page's work, not a guess
/// at the list's size).
export const MAX_PAGES = 50;

/// lpd refused `token` (HTTP 401).
export class AuthError extends Error {
  constructor(message, token) { super(message); this.token = token; }
}
export class OpError extends Error {
  constructor(message, code) { super(message); this.code = code; }
}

/// Calls lpd's operation `name` with `fields`; resolves to its result.
/// Rejects with AuthError on 401 and OpError for lpd's refusals (its
/// message) or no answer.
export async function op(name, fields) {
  const headers = { 'Content-Type': 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  let response;
  try {
    response = await fetch('/api/op/' + encodeURIComponent(name), {
      method: 'POST', headers, body: JSON.stringify(fields || {}),
      credentials: 'omit', cache: 'no-store',
    });
  } catch (e) {
    throw new OpError(`lpd did not answer ${name}: ${e.message}`, 'unavailable');
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (response.status === 401) {
    const why = body && (typeof body.error === 'string' ? body.error : body.error && body.error.message);
    throw new AuthError(why || 'lpd refused the token (HTTP 401)', session.token);
  }
  if (!response.ok || !body || body.ok !== true) {
    const error = body && body.error;
    const message = error && typeof error === 'object' ? error.message : error;
    throw new OpError(`${name}: ${message || 'HTTP ' + response.status}`, error && error.code);
  }
  return body.result || {};
}

/// Every page of a paged list op: `field` is the list in each reply;
/// `next` goes back as `after` until it is null (at most `maxPages`).
/// Each page's items go to `take(items)`; without it they are returned.
export async function allPages(name, fields, field, take, maxPages = MAX_PAGES) {
  const items = [];
  let request = Object.assign({}, fields);
  for (let page = 0; page < maxPages; page++) {
    const result = await op(name, request);
    if (take) take(result[field] || []); else items.push(...(result[field] || []));
    if (result.next === null || result.next === undefined) break;
    request = Object.assign({}, fields, { after: result.next });
  }
  return items;
}

/// Every page of events.list for `fields`, each handed to `take(events)`
/// until it returns false or `current()` does; events.list's cursor is
/// `since` (the reply's `next`), null at the end.
export async function eachEventPage(fields, take, current) {
  let request = Object.assign({ limit: 1000 }, fields);
  for (;;) {
    const result = await op('events.list', request);
    if (!current()) return;
    if (take(result.events || []) === false) return;
    if (result.next === null || result.next === undefined) return;
    request = Object.assign({}, request, { since: result.next });
  }
}

/// Runs the async functions `tasks` at most `limit` at a time; one that
/// fails for another reason than the token does not stop the others.
export async function inPool(tasks, limit) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      try { await task(); } catch (e) { if (e instanceof AuthError) throw e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/// The address of lpd's WebSocket, beside this page, with the token.
export function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = session.token ? '?token=' + encodeURIComponent(session.token) : '';
  return `${scheme}//${location.host}/ws${query}`;
}
