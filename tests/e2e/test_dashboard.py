"""The dashboard at / (issue 16, h16dash) in Debian's headless chromium,
driven over the Chrome DevTools Protocol (tests/e2e/chromium_cdp.py) against
a real lpd started with --http 127.0.0.1:0 and real `lpctl run` pytest runs.

Waits are events: MutationObserver promises evaluated in the page, CDP
replies, process exits. Screenshots are saved under LPD_E2E_ARTIFACTS (or the
test's tmp dir) and their paths printed."""

import asyncio
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import urllib.request

import pytest

import chromium_cdp
from lpd_harness import LPCTL_BIN, Lpd, PYTHON, killed_if_left_running

SUITE = '''
def test_a_passes():
    pass

def test_b_passes():
    pass

def test_c_fails():
    assert 6 * 7 == 41, "the answer is 42 <img src=x onerror=window.__injected=1>"

def test_d_passes():
    pass

def test_e_passes():
    pass
'''

CRASHING_SUITE = '''
import ctypes

def test_fine():
    pass

def test_segfaults():
    ctypes.string_at(0)
'''


def chromium_or_skip():
    """chromium's path once chromium and python3-websockets are there. When
    they are missing, installs them with apt-get where this user may (CI
    runs scripts/install-deps.sh first); skips, saying why, only when that
    cannot be done."""
    if chromium_cdp.find_chromium() and chromium_cdp.websockets_client():
        return chromium_cdp.find_chromium()
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium or python3-websockets is missing and this user cannot install them "
                    "(scripts/install-deps.sh installs both)")
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium",
                             "python3-websockets"], capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if result.returncode != 0 or not chromium_cdp.find_chromium() or not chromium_cdp.websockets_client():
        pytest.skip("chromium or python3-websockets is missing and apt-get could not install them: "
                    + (result.stderr or result.stdout)[-500:])
    return chromium_cdp.find_chromium()


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the whole module, with a fresh profile;
    yields (event loop, Browser)."""
    path = chromium_or_skip()
    loop = asyncio.new_event_loop()
    b = loop.run_until_complete(chromium_cdp.Browser(path).start())
    try:
        yield loop, b
    finally:
        loop.run_until_complete(b.close())
        loop.close()


@pytest.fixture
def lpd_http():
    """A real lpd serving HTTP on a port the kernel picked; yields (lpd,
    base URL, token)."""
    daemon = Lpd().start("--http", "127.0.0.1:0")
    try:
        yield daemon, http_base_url(daemon), http_token(daemon)
    finally:
        daemon.kill_helpers()
        daemon.stop()
        if not os.environ.get("LPD_E2E_KEEP"):
            shutil.rmtree(daemon.root, ignore_errors=True)


def http_token(daemon):
    path = os.path.join(daemon.state_dir, "http.token")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    with open(path) as f:
        return f.read().strip()


def http_base_url(daemon):
    """http://127.0.0.1:PORT of lpd's HTTP server, as `lpctl status` gives it."""
    status = daemon.lpctl_json("status")
    http = status.get("http")
    address = http.get("address") if isinstance(http, dict) else http
    assert isinstance(address, str) and address, f"lpctl status names no HTTP address: {status}"
    return f"http://{address}"


def artifacts_dir(tmp_path):
    directory = os.environ.get("LPD_E2E_ARTIFACTS") or str(tmp_path)
    os.makedirs(directory, exist_ok=True)
    return directory


def show_artifact(capsys, path):
    """Prints where an artefact was saved, past pytest's capture (ctest's -q run shows it)."""
    with capsys.disabled():
        print(f"\ntest_dashboard: saved {path}")


def run(loop, coroutine):
    return loop.run_until_complete(coroutine)


async def open_dashboard(b, url):
    """A tab in a browser context of its own (no token stored by another test)
    showing the dashboard at `url`, its state loaded and live."""
    page = await b.new_page(isolated=True)
    await page.navigate(url)
    await page.wait_for("document.body.dataset.loaded === 'true' && document.body.dataset.connection === 'live'",
                        "the dashboard loaded and live")
    return page


async def assert_token_nowhere(page, token):
    """The token is in none of the places another page of this origin, or
    whoever serves it later, could read: the address, the tab's history,
    localStorage, sessionStorage, cookies (the page holds it in memory)."""
    kept = await page.evaluate("""(() => {
        const all = (s) => { const o = {}; for (let i = 0; i < s.length; i++) o[s.key(i)] = s.getItem(s.key(i)); return o; };
        return {href: location.href, local: all(localStorage), session: all(sessionStorage), cookie: document.cookie};
    })()""")
    assert token not in json.dumps(kept), kept
    assert kept["local"] == {} and kept["session"] == {} and kept["cookie"] == "", kept
    history = await page.send("Page.getNavigationHistory")
    urls = [entry["url"] for entry in history["entries"]]
    assert not any(token in url for url in urls), urls


async def paste_into_address_bar(page, url):
    """What a user does with lpctl dashboard's link in a tab already showing
    the page: the address changes (only its #fragment: no new load)."""
    result = await page.send("Page.navigate", {"url": url})
    assert not result.get("errorText"), result


def restartable_http_lpd():
    """The first lpd of a test that restarts lpd on one state directory and
    one HTTP port: (that lpd, its base URL, its token, its port)."""
    first = Lpd().start("--http", "127.0.0.1:0")
    try:
        base = http_base_url(first)
        return first, base, http_token(first), base.rsplit(":", 1)[1]
    except BaseException:
        end_restarted(first, None)
        raise


def end_restarted(first, second):
    """Stops both lpds of a test that restarts lpd on one state directory
    (the second may not have started), then removes that directory."""
    for daemon in (second, first):
        if daemon is not None and daemon.proc is not None:
            daemon.kill_helpers()
            daemon.stop()
    shutil.rmtree(first.root, ignore_errors=True)


def count_js(run_id, name):
    return (f"(document.querySelector('li.run[data-run-id=\"{run_id}\"] [data-count=\"{name}\"]') || {{}})"
            f".textContent")


def test_run_appears_pauses_and_resumes_by_click(browser, lpd_http, work_dir, tmp_path, capsys):
    loop, b = browser
    lpd, base, token = lpd_http
    out_dir = artifacts_dir(tmp_path)
    with open(os.path.join(work_dir, "test_dash_suite.py"), "w") as f:
        f.write(SUITE)

    async def scenario():
        # lpctl dashboard's link: the token in the fragment.
        page = await open_dashboard(b, f"{base}/#token={token}")
        try:
            # The token left the address bar and history; the page keeps it in memory only.
            assert await page.evaluate("location.search + location.hash") == ""
            await assert_token_nowhere(page, token)
            assert await page.evaluate("document.getElementById('runs-count').textContent") == "0"
            await page.evaluate("window.__samePage = true")

            log_path = os.path.join(out_dir, "lpctl-run.log")
            with open(log_path, "w") as log:
                proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--pause-on-failure", "--",
                                         PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                         "test_dash_suite.py"],
                                        cwd=work_dir, env=lpd.env(), stdout=log, stderr=subprocess.STDOUT)
            with killed_if_left_running(proc):
                # The run appears, live.
                run_id = await page.wait_for("(document.querySelector('li.run') || {dataset: {}}).dataset.runId",
                                             "a run card")
                # The failing test pauses: its failure text is shown, as text.
                pause_id = await page.wait_for(
                    "(document.querySelector('li.pause[data-kind=\"failure\"]') || {dataset: {}}).dataset.pauseId",
                    "a pending failure pause")
                pause = f'li.pause[data-pause-id="{pause_id}"]'
                card = await page.evaluate(f"""(() => {{
                    const card = document.querySelector('{pause}');
                    return {{title: card.querySelector('h3').textContent,
                             failure: card.querySelector('pre.failure').textContent,
                             elementsInFailure: card.querySelector('pre.failure').children.length,
                             meta: card.querySelector('.meta').textContent}};
                }})()""")
                assert card["title"] == "test_dash_suite.py::test_c_fails", card
                assert "the answer is 42 <img src=x onerror=window.__injected=1>" in card["failure"], card
                assert card["elementsInFailure"] == 0, card  # text, never HTML
                assert run_id in card["meta"], card

                # Progress so far, live: two passed, the failed one still running (paused before teardown).
                await page.wait_for(f"{count_js(run_id, 'passed')} === '2' && {count_js(run_id, 'failed')} === '0'"
                                    f" && /test_c_fails/.test(document.querySelector('li.run[data-run-id=\"{run_id}\"]"
                                    f" .running').textContent)", "2 passed, test_c_fails running")
                latest = await page.evaluate(
                    f"[...document.querySelectorAll('li.run[data-run-id=\"{run_id}\"] .latest li')]"
                    ".map(li => li.dataset.outcome + ' ' + li.dataset.nodeid)")
                assert latest == ["passed test_dash_suite.py::test_b_passes",
                                  "passed test_dash_suite.py::test_a_passes"], latest

                # Every control is labelled, and the keyboard reaches the Resume button with a visible focus.
                unlabelled = await page.evaluate("""[...document.querySelectorAll('button, input')]
                    .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length) ||
                                   e.textContent.trim())).map(e => e.outerHTML)""")
                assert unlabelled == []
                resume = f'{pause} button[data-action="resume"]'
                focused = None
                for _ in range(40):
                    await page.press_key("Tab", key_code=9)
                    focused = await page.evaluate(f"document.activeElement === document.querySelector('{resume}')")
                    if focused:
                        break
                assert focused, "Tab never reached the Resume button"
                outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline not in ("", "none"), outline

                shot = await page.screenshot(os.path.join(out_dir, "dashboard-paused.png"))
                show_artifact(capsys, shot)

                # Resume by a real mouse click on the button.
                await page.click(resume)
                await page.wait_for(f"!document.querySelector('{pause}')", "the pause card to go")
                # The test goes on and the run finishes: 4 passed, 1 failed, job done.
                await page.wait_for(
                    f"{count_js(run_id, 'passed')} === '4' && {count_js(run_id, 'failed')} === '1' && "
                    f"document.querySelector('li.run[data-run-id=\"{run_id}\"]').dataset.status === 'ended' && "
                    f"document.querySelector('li.run[data-run-id=\"{run_id}\"]').dataset.jobState === 'done'",
                    "4 passed, 1 failed, the run ended and its job done")
                code = await loop.run_in_executor(None, proc.wait, 180)
            with open(log_path) as f:
                output = f.read()
            assert code == 1, output
            assert re.search(r"\b1 failed, 4 passed\b", output), output
            assert await page.evaluate("window.__samePage === true && window.__injected === undefined")
            assert await page.evaluate("document.getElementById('pauses-count').textContent") == "0"
            shot = await page.screenshot(os.path.join(out_dir, "dashboard-done.png"))
            show_artifact(capsys, shot)
            assert [line for line in page.console if line.startswith("exception")] == [], page.console
            await assert_token_nowhere(page, token)
        finally:
            await page.close()

    run(loop, scenario())


def test_token_is_asked_for_and_taken_from_the_keyboard(browser, lpd_http):
    loop, b = browser
    lpd, base, token = lpd_http

    async def scenario():
        page = await b.new_page(isolated=True)
        try:
            # No token stored in this context: the page asks for one and says how.
            await page.navigate(f"{base}/")
            message = await page.wait_for(
                "document.body.dataset.auth === 'refused' && !document.getElementById('auth').hidden && "
                "document.getElementById('main').hidden && document.getElementById('auth-message').textContent",
                "the token form")
            assert message.strip(), message
            # A wrong one: the same.
            await page.navigate(f"{base}/?token=not-the-token")
            await page.wait_for("document.body.dataset.auth === 'refused'", "the token form again")
            # The form has the focus: type the token and press Enter.
            assert await page.evaluate("document.activeElement.id") == "auth-token"
            await page.type_text(token)
            await page.press_key("Enter", text="\r", key_code=13)
            await page.wait_for("document.body.dataset.loaded === 'true' && !document.getElementById('main').hidden "
                                "&& document.getElementById('auth').hidden", "the dashboard after the token")
            # lpd keeps serving the daemon's own clients meanwhile.
            assert lpd.ping()
        finally:
            await page.close()

    run(loop, scenario())


def test_crash_traceback_and_helper_log_tail(browser, lpd_http, work_dir):
    loop, b = browser
    lpd, base, token = lpd_http
    with open(os.path.join(work_dir, "test_crashing.py"), "w") as f:
        f.write(CRASHING_SUITE)
    fifo = os.path.join(work_dir, "helper.fifo")
    os.mkfifo(fifo)

    async def scenario():
        page = await open_dashboard(b, f"{base}/?token={token}")
        try:
            # A helper process: listed live, its log followed in the panel.
            await loop.run_in_executor(None, lambda: lpd.lpctl(
                "ensure", "dashhelper", "--pattern", "ready", "--",
                "sh", "-c", "printf '\\033[1;31mcoloured\\033[0m text\\r\\n'; echo ready; "
                f'read line < "{fifo}"; echo "got $line"; exec sleep 100000'))
            await page.wait_for("document.querySelector('li.proc[data-proc$=\"dashhelper\"] .state')"
                                ".textContent === 'ready'", "the helper listed as ready")
            await page.click('li.proc[data-proc$="dashhelper"] button')
            await page.wait_for("document.getElementById('log-text').textContent.includes('ready') && "
                                "document.getElementById('log-status').textContent === 'following'",
                                "the helper's log in the panel")
            # Terminal colours are dropped and CR LF is a line end: text, no escapes (h16auth).
            log_text = await page.evaluate("document.getElementById('log-text').textContent")
            assert "coloured text\nready\n" in log_text, repr(log_text)
            assert not any(ord(c) < 32 and c not in "\n\t" for c in log_text), repr(log_text)

            def write_fifo():
                with open(fifo, "w") as f:
                    f.write("hello from the test\n")
            await loop.run_in_executor(None, write_fifo)
            await page.wait_for("document.getElementById('log-text').textContent.includes('got hello from the test')",
                                "the new log line, followed live")

            # A test that segfaults: the crash and its traceback.
            result = await loop.run_in_executor(None, lambda: subprocess.run(
                [LPCTL_BIN, "--socket", lpd.socket, "--json", "run", "--", PYTHON, "-m", "pytest",
                 "-p", "no:cacheprovider", "-q", "test_crashing.py"],
                cwd=work_dir, env=lpd.env(), capture_output=True, text=True, timeout=180))
            assert result.returncode != 0, result.stdout + result.stderr
            run_id = json.loads([l for l in result.stdout.splitlines() if l.startswith("{")][-1])["run_id"]
            crash = await page.wait_for(
                "(document.querySelector('li.crash') || {dataset: {}}).dataset.crashId", "a crash card")
            await page.click(f'li.crash[data-crash-id="{crash}"] summary')
            details = await page.wait_for(f"""(() => {{
                const c = document.querySelector('li.crash[data-crash-id="{crash}"]');
                return c.querySelector('details').open && {{
                    summary: c.querySelector('summary').textContent,
                    traceback: (c.querySelector('pre.traceback') || {{}}).textContent || ''}};
            }})()""", "the crash's details open")
            assert "SIGSEGV" in details["summary"] and "test_crashing.py::test_segfaults" in details["summary"], details
            assert "Segmentation fault" in details["traceback"], details
            await page.wait_for(f"{count_js(run_id, 'crashed')} === '1' && {count_js(run_id, 'passed')} === '1'",
                                "the run's counts: 1 passed, 1 crashed")

            # Loaded again (?token=, which works as #token= does), the page shows
            # the same from lpd's history: counts, latest tests, the crash.
            await page.navigate(f"{base}/?token={token}")
            await page.wait_for("document.body.dataset.loaded === 'true'", "the dashboard loaded again")
            again = await page.evaluate(f"""(() => {{
                const run = document.querySelector('li.run[data-run-id="{run_id}"]');
                return {{passed: {count_js(run_id, 'passed')}, crashed: {count_js(run_id, 'crashed')},
                         status: run.dataset.status, running: run.querySelector('.running').textContent,
                         latest: [...run.querySelectorAll('.latest li')].map(li => li.dataset.nodeid),
                         crash: !!document.querySelector('li.crash[data-crash-id="{crash}"]'),
                         log: !document.getElementById('log').hidden}};
            }})()""")
            assert again == {"passed": "1", "crashed": "1", "status": "ended", "running": "",
                             "latest": ["test_crashing.py::test_fine"], "crash": True, "log": False}, again
        finally:
            await page.close()

    run(loop, scenario())


DECISIONS_SUITE = '''
from lpd_pytest import checkpoint

def test_approve_layout():
    decision = checkpoint(task="approve the invoice layout", timeout=120)
    assert decision.result is True and decision.reason == "looks right", decision

def test_broken():
    assert False, "broken on purpose"
'''


def test_checkpoint_result_and_failure_reason_from_the_page(browser, lpd_http, work_dir, tmp_path):
    loop, b = browser
    lpd, base, token = lpd_http
    with open(os.path.join(work_dir, "test_decisions.py"), "w") as f:
        f.write(DECISIONS_SUITE)

    async def pause_card(kind):
        pause_id = await page.wait_for(
            f"(document.querySelector('li.pause[data-kind=\"{kind}\"]') || {{dataset: {{}}}}).dataset.pauseId",
            f"a {kind} pause")
        return f'li.pause[data-pause-id="{pause_id}"]'

    async def scenario():
        nonlocal page
        page = await open_dashboard(b, f"{base}/?token={token}")
        log_path = os.path.join(artifacts_dir(tmp_path), "lpctl-run-decisions.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--pause-on-failure", "--",
                                     PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_decisions.py"],
                                    cwd=work_dir, env=lpd.env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            # A checkpoint: its task, a reason typed, then Pass (result true).
            checkpoint = await pause_card("checkpoint")
            assert await page.evaluate(f"document.querySelector('{checkpoint} .task').textContent") == \
                "Checkpoint task: approve the invoice layout"
            await page.click(f"{checkpoint} input")
            await page.type_text("looks right")
            await page.click(f'{checkpoint} button[data-action="result-true"]')
            await page.wait_for(f"!document.querySelector('{checkpoint}')", "the checkpoint resumed")

            # A failure pause: Fail with reason needs the reason first.
            failure = await pause_card("failure")
            await page.click(f'{failure} button[data-action="fail-with-reason"]')
            refusal = await page.wait_for(f"document.querySelector('{failure} .error').textContent",
                                          "the page asking for the reason")
            assert "reason" in refusal, refusal
            assert await page.evaluate(f"!!document.querySelector('{failure}')")  # still pending
            await page.click(f"{failure} input")
            await page.type_text("known bug #12")
            await page.click(f'{failure} button[data-action="fail-with-reason"]')
            await page.wait_for(f"!document.querySelector('{failure}')", "the failure pause resumed")
            code = await loop.run_in_executor(None, proc.wait, 180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            await page.close()
        with open(log_path) as f:
            output = f.read()
        assert code == 1, output
        assert re.search(r"\b1 failed, 1 passed\b", output), output  # the checkpoint's decision reached the test
        assert "external failure reason (lpd)" in output and "known bug #12" in output, output

    page = None
    run(loop, scenario())


def test_reconnects_when_lpd_comes_back(browser, tmp_path):
    """lpd stops and starts again on the same port: the page says the
    connection is lost, reconnects by itself, and shows lpd's state again
    (the token it holds in memory still holds: the token file is kept)."""
    loop, b = browser
    first, base, token, port = restartable_http_lpd()
    second = None
    try:
        # A run to see after the restart.
        first.lpctl("run", "--", "true")

        async def scenario():
            nonlocal second
            page = await open_dashboard(b, f"{base}/?token={token}")
            try:
                await page.wait_for("document.querySelectorAll('li.run').length === 1", "the run")
                await page.evaluate("window.__samePage = true")
                first.stop()
                await page.wait_for("document.body.dataset.connection === 'down'", "the lost connection shown")
                second = Lpd(root=first.root).start("--http", f"127.0.0.1:{port}")
                await page.wait_for("document.body.dataset.connection === 'live' && "
                                    "document.querySelectorAll('li.run[data-status=\"ended\"]').length === 1",
                                    "the page live again with the run", timeout=90)
                assert await page.evaluate("window.__samePage === true")
            finally:
                await page.close()

        run(loop, scenario())
    finally:
        end_restarted(first, second)


class HeaderRecorder:
    """A second local HTTP server (another port of 127.0.0.1, as another
    local user's would be): records every request's path and headers, and
    serves a page. `got_request` is set at each request."""

    def __init__(self, port=0):
        recorder = self
        self.requests = []  # (method, path, [(name, value)])
        self.got_request = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                recorder.requests.append((self.command, self.path, list(self.headers.items())))
                recorder.got_request.set()
                body = b"<!doctype html><title>another server</title><p>not lpd</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def list_jobs(base, token):
    """GET /jobs with the token (urllib): lpd's relay jobs."""
    req = urllib.request.Request(f"{base}/jobs", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as res:
        return json.loads(res.read())


def test_another_local_server_gets_no_token_from_the_browser(browser, lpd_http):
    """h16auth, the attack: with the token in a cookie for 127.0.0.1, the
    browser sent it to every port of 127.0.0.1, so any local user's server
    the browser visited got lpd's token (root's lpd: anything as root). The
    dashboard keeps the token in memory instead: the other server gets
    nothing, its page can neither read the token nor act on lpd; back on
    the dashboard, a reload asks for the token again, and lpctl dashboard's
    link pasted into the address bar signs the page in."""
    loop, b = browser
    lpd, base, token = lpd_http
    other = HeaderRecorder()

    async def scenario():
        page = await open_dashboard(b, f"{base}/?token={token}")
        try:
            assert await page.evaluate("location.search") == ""
            # The user follows a link from the dashboard to the other server (same tab).
            await page.evaluate(f"""(() => {{
                const a = document.createElement('a');
                a.href = {json.dumps(other.url + '/from-a-link')};
                a.id = 'away';
                a.textContent = 'away';
                document.body.prepend(a);
            }})()""")
            await page.until_loaded(lambda: page.click("#away"))
            assert other.got_request.is_set(), "the browser never reached the other server"
            assert await page.evaluate("location.href") == other.url + "/from-a-link"
            # Its page: no token in its own storage, and a no-cors POST /jobs
            # to lpd (the attacker's move) carries no credential: lpd runs nothing.
            assert await page.evaluate("localStorage.length") == 0
            await page.evaluate(f"""fetch({json.dumps(base + '/jobs')}, {{method: 'POST', mode: 'no-cors',
                credentials: 'include', body: JSON.stringify({{args: ['-q']}})}}).then(() => true)""")
            # The user also types the other server's address.
            other.got_request.clear()
            await page.navigate(other.url + "/typed")
            assert await loop.run_in_executor(None, other.got_request.wait, 60)
            for method, path, headers in other.requests:
                assert token not in path, path
                for name, value in headers:
                    assert token not in value, (path, name, value)
                    assert name.lower() != "cookie", (path, name, value)
            assert any(path == "/from-a-link" for _, path, _ in other.requests), other.requests
            jobs = await loop.run_in_executor(None, lambda: list_jobs(base, token))
            assert jobs == [], jobs

            # Back to the dashboard in the same tab, without the token: the form,
            # saying to run lpctl dashboard for a fresh link; nothing asked of lpd.
            await page.navigate(f"{base}/")
            message = await page.wait_for("document.body.dataset.auth === 'refused' && "
                                          "document.getElementById('auth-message').textContent", "the token form")
            assert "lpctl dashboard" in message, message
            # lpctl dashboard's link pasted into the address bar: signed in, live.
            await paste_into_address_bar(page, f"{base}/#token={token}")
            await page.wait_for("document.body.dataset.loaded === 'true' && document.body.dataset.connection === 'live'"
                                " && document.getElementById('auth').hidden", "the dashboard live again")
            await assert_token_nowhere(page, token)
            # A reload: the form again (the token lived in the page only).
            await page.evaluate("window.__beforeReload = true")
            await page.until_loaded(lambda: page.send("Page.reload"))
            assert await page.evaluate("window.__beforeReload === undefined")
            await page.wait_for("document.body.dataset.auth === 'refused' && !document.getElementById('auth').hidden",
                                "the token form after a reload")
            await assert_token_nowhere(page, token)
        finally:
            await page.close()

    try:
        run(loop, scenario())
    finally:
        other.close()


def test_a_rotated_token_goes_back_to_the_sign_in_form_without_a_loop(browser, tmp_path):
    """lpd restarts with a new token (http.token deleted): the page's token
    is refused, so the page forgets it and shows the form, saying what
    to do; a reload asks lpd nothing until a token is given; the new token
    typed in works."""
    loop, b = browser
    first, base, old_token, port = restartable_http_lpd()
    second = None
    try:

        async def scenario():
            nonlocal second
            page = await open_dashboard(b, f"{base}/?token={old_token}")
            try:
                await assert_token_nowhere(page, old_token)
                first.stop()
                os.unlink(os.path.join(first.state_dir, "http.token"))
                await page.wait_for("document.body.dataset.connection === 'down'", "the lost connection shown")
                second = Lpd(root=first.root).start("--http", f"127.0.0.1:{port}")
                new_token = http_token(second)
                assert new_token != old_token
                message = await page.wait_for(
                    "document.body.dataset.auth === 'refused' && !document.getElementById('auth').hidden && "
                    "document.getElementById('auth-message').textContent", "the form after the refusal", timeout=90)
                assert "refused" in message and "http.token" in message, message
                text = await page.evaluate("document.getElementById('auth').textContent")
                assert "http.token" in text and f"{base}/#token=TOKEN" in text, text
                assert await page.evaluate("document.activeElement.id") == "auth-token"

                # A reload: the form at once, and no request to lpd's API (no loop).
                await page.navigate(f"{base}/")
                await page.wait_for("document.body.dataset.auth === 'refused' && "
                                    "!document.getElementById('auth').hidden", "the form after a reload")
                api_calls = await page.evaluate("performance.getEntriesByType('resource')"
                                                ".map(e => e.name).filter(n => /\\/(api|ws|jobs)/.test(n))")
                assert api_calls == [], api_calls

                # The new token, typed: signed in, live, and kept.
                await page.type_text(new_token)
                await page.press_key("Enter", text="\r", key_code=13)
                await page.wait_for("document.body.dataset.loaded === 'true' && "
                                    "document.body.dataset.connection === 'live'", "the dashboard with the new token")
                await assert_token_nowhere(page, new_token)
            finally:
                await page.close()

        run(loop, scenario())
    finally:
        end_restarted(first, second)


def test_a_server_later_on_lpds_port_finds_no_token(browser, tmp_path):
    """attack16b #2: the page kept the token in localStorage for
    http://127.0.0.1:PORT. Once lpd stopped (or moved to another port),
    another local user's server on that port served the same origin, read
    the storage and had lpd's token, still valid. The page holds it in
    memory only: the same tab, now on that server, finds nothing."""
    loop, b = browser
    daemon = Lpd().start("--http", "127.0.0.1:0")
    other = None
    try:
        base = http_base_url(daemon)
        token = http_token(daemon)
        port = int(base.rsplit(":", 1)[1])

        async def scenario():
            nonlocal other
            page = await b.new_page(isolated=True)
            try:
                # An older dashboard left the token in this origin's localStorage: removed at the next load.
                await page.navigate(f"{base}/")
                await page.evaluate(f"localStorage.setItem('lpd.http.token', {json.dumps(token)})")
                await page.navigate(f"{base}/?token={token}")
                await page.wait_for("document.body.dataset.loaded === 'true' && "
                                    "document.body.dataset.connection === 'live'", "the dashboard loaded and live")
                await assert_token_nowhere(page, token)
                daemon.stop()
                await page.wait_for("document.body.dataset.connection === 'down'", "the lost connection shown")
                # Another local user binds lpd's old port: the same origin.
                other = HeaderRecorder(port)
                assert other.url == base
                await page.navigate(f"{base}/")
                assert await page.evaluate("document.title") == "another server"
                await assert_token_nowhere(page, token)
                for _method, path, headers in other.requests:
                    assert token not in path and not any(token in value for _, value in headers), (path, headers)
            finally:
                await page.close()

        run(loop, scenario())
    finally:
        if other is not None:
            other.close()
        if daemon.proc is not None:
            daemon.kill_helpers()
            daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


LONG_NAME = "test_" + "a" * 5000
HOSTILE_SUITE = f'''
def {LONG_NAME}():
    assert False, "\\x1b[31mred\\x1b[0m bell\\x07 end"
'''


def test_huge_argv_long_nodeid_and_escapes_leave_the_page_usable(browser, lpd_http, work_dir):
    """attack16b #7 and #12: runs with megabytes of arguments made the page
    never finish loading (it showed and re-rendered every argv whole); a
    5000-character test id stretched its cards to the screen's height; a
    failure text's ESC and BEL showed as boxes. The page shows argv cut to
    300 characters, test ids to a few lines (the whole in the title), and
    failure text as the helper log view does."""
    loop, b = browser
    lpd, base, token = lpd_http
    with open(os.path.join(work_dir, "test_hostile.py"), "w") as f:
        f.write(HOSTILE_SUITE)
    # Runs with 7 arguments of 9 KB each: lpd keeps them whole (a run keeps
    # 64 KiB of argv), the page must cut them. And one with 7 of 100 KB (the
    # kernel's limit is 128 KiB an argument), which lpd keeps as a count of
    # what it left out.
    for _ in range(3):
        lpd.lpctl("run", "--", "true", *(["x" * 9_000] * 7))
    lpd.lpctl("run", "--", "true", *(["x" * 100_000] * 7))

    async def scenario():
        page = await open_dashboard(b, f"{base}/#token={token}")
        try:
            argv = await page.evaluate("[...document.querySelectorAll('li.run .argv')].map(p => p.textContent)")
            assert len(argv) == 4, [len(a) for a in argv]
            assert argv.count("true ... 7 more argument(s), 700007 bytes, not kept") == 1, argv
            for line in argv:
                if "not kept" not in line:
                    assert line.startswith("true xxx") and line.endswith("…") and len(line) <= 301, len(line)

            proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--pause-on-failure", "--",
                                     PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_hostile.py"],
                                    cwd=work_dir, env=lpd.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with killed_if_left_running(proc):
                pause_id = await page.wait_for(
                    "(document.querySelector('li.pause') || {dataset: {}}).dataset.pauseId", "the pause")
                pause = f'li.pause[data-pause-id="{pause_id}"]'
                await page.wait_for(f"document.querySelector('li.run .running').textContent.includes('{LONG_NAME}')",
                                    "the long test shown running")
                seen = await page.evaluate(f"""(() => {{
                    const card = document.querySelector('{pause}');
                    const run = document.querySelector('li.run .running').closest('li.run');
                    return {{failure: card.querySelector('pre.failure').textContent,
                             title: card.querySelector('h3').getAttribute('title'),
                             titleHeight: card.querySelector('h3').getBoundingClientRect().height,
                             runHeight: run.getBoundingClientRect().height,
                             running: run.querySelector('.running').getAttribute('title')}};
                }})()""")
                assert "red bell\ufffd end" in seen["failure"], repr(seen["failure"][:2000])
                assert not any(ord(c) < 32 and c not in "\n\t" for c in seen["failure"]), repr(seen["failure"][:2000])
                assert seen["title"] == f"test_hostile.py::{LONG_NAME}"
                assert LONG_NAME in seen["running"]
                # 5000 characters wrapped whole are some 60 lines (over 1000 px): a few lines are shown.
                assert seen["titleHeight"] < 100, seen["titleHeight"]
                assert seen["runHeight"] < 400, seen["runHeight"]

                await page.click(f'{pause} button[data-action="resume"]')
                await page.wait_for(f"document.querySelector('li.run .latest li[data-outcome=\"failed\"]')",
                                    "the long test finished")
                finished = await page.evaluate("""(() => {
                    const li = document.querySelector('li.run .latest li[data-outcome="failed"]');
                    return {height: li.closest('li.run').getBoundingClientRect().height,
                            title: li.querySelector('.nodeid').getAttribute('title')};
                })()""")
                assert finished["title"] == f"test_hostile.py::{LONG_NAME}"
                assert finished["height"] < 400, finished
                await loop.run_in_executor(None, proc.wait, 180)
        finally:
            await page.close()

    run(loop, scenario())
