#!/usr/bin/env python3
"""The dashboard's first render time, in Debian's headless chromium, against
a real lpd started with --http 127.0.0.1:0 (issue 16, h16dash).

For each of --loads page loads (a fresh navigation of the same tab, so the
browser cache holds the files as it would for a person reloading):
  first render: navigation start -> the runs list rendered with data
                (the page's performance mark "lpd-runs-rendered", set
                right after run.list's answer is on the screen)
  loaded:       navigation start -> every shown run's counts, crashes
                and job loaded too (mark "lpd-loaded")
both read from the page's own clock (performance.timeOrigin is the
navigation start). lpd holds --runs ended runs of --tests tests each
(made over lpd's socket as a pytest shim would: run.register, test.start,
test.finish, run.end), plus one crash-free active run.

--screenshot PATH instead makes the README's picture (docs/dashboard.png):
a real pytest run under `lpctl run --pause-on-failure` paused at a failing
test, an ended run with a crash, and a helper process with its log open.

Usage: bench/dashboard_bench.py [--build build/default] [--loads 50] [--runs 20] [--tests 200]
       bench/dashboard_bench.py [--build build/default] --screenshot docs/dashboard.png
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def setup_paths(build):
    os.environ["LPD_BIN"] = os.path.join(build, "lpd")
    os.environ["LPCTL_BIN"] = os.path.join(build, "lpctl")
    os.environ.setdefault("LPD_SOURCE_DIR", ROOT)
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))


def make_runs(lpd, runs, tests):
    """`runs` ended runs of `tests` tests each (every 10th failed), and
    one active run, made over the socket as the pytest shim would."""
    from lpd_harness import RawClient
    for r in range(runs + 1):
        client = RawClient(lpd.socket)
        client.hello(role="shim")
        reply = client.request("run.register", argv=["pytest", f"tests/suite_{r}"], cwd="/src", hostname="bench")
        assert reply["ok"], reply
        lines = []
        for t in range(tests):
            nodeid = f"tests/test_mod{r}.py::test_{t}"
            outcome = "failed" if t % 10 == 9 else "passed"
            lines.append(json.dumps({"op": "test.start", "nodeid": nodeid}))
            lines.append(json.dumps({"op": "test.finish", "nodeid": nodeid, "outcome": outcome, "phase": "call",
                                     "duration": 0.001, "message": "assert 1 == 2" if outcome == "failed" else ""}))
        client.send_raw("\n".join(lines) + "\n")
        if r < runs:
            assert client.request("run.end")["ok"]
            client.close()
        else:
            make_runs.active = client  # kept open: the run stays active


async def measure(args, base, token):
    import chromium_cdp
    browser = await chromium_cdp.Browser().start()
    try:
        page = await browser.new_page(isolated=True)
        first, loaded = [], []
        for i in range(args.loads + 1):
            # Each load brings the token (the page keeps it in memory only); the first warms the cache: not counted.
            # (?token=: the page is at {base}/ after a load, so #token= would change its fragment only.)
            await page.navigate(f"{base}/?token={token}")
            await page.wait_for("document.body.dataset.loaded === 'true'", "the dashboard loaded", timeout=120)
            marks = await page.evaluate("""(() => {
                const at = (name) => (performance.getEntriesByName(name)[0] || {}).startTime;
                return {first: at('lpd-runs-rendered'), loaded: at('lpd-loaded'),
                        runs: document.querySelectorAll('li.run').length};
            })()""")
            assert marks["runs"] == min(args.runs + 1, 50), marks
            if i > 0:
                first.append(marks["first"])
                loaded.append(marks["loaded"])
        return first, loaded
    finally:
        await browser.close()


SCREENSHOT_SUITE = '''
import pytest

@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 32])
def test_checkout_total(size):
    assert size * 3 == 3 * size

def test_refund_rounds_to_cents():
    total = round(19.99 * 3, 2)
    assert total == 59.98, f"refund total was {total}, expected 59.98"

@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_login(user):
    assert user.isalpha()
'''

SCREENSHOT_CRASH = '''
import ctypes

def test_parse_header():
    pass

def test_native_decoder():
    ctypes.string_at(0)
'''


async def screenshot(args, lpd, base, token):
    import chromium_cdp
    from lpd_harness import LPCTL_BIN, PYTHON
    work = os.path.join(lpd.root, "shop")
    os.makedirs(work)
    open(os.path.join(work, "pytest.ini"), "w").write("[pytest]\n")
    open(os.path.join(work, "test_checkout.py"), "w").write(SCREENSHOT_SUITE)
    open(os.path.join(work, "test_decoder.py"), "w").write(SCREENSHOT_CRASH)
    subprocess.run([LPCTL_BIN, "--socket", lpd.socket, "run", "--name", "decoder", "--", PYTHON, "-m", "pytest",
                    "-q", "-p", "no:cacheprovider", "test_decoder.py"], cwd=work, env=lpd.env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    lpd.lpctl("ensure", "payments-mock", "--scope", "", "--pattern", "ready", "--", "sh", "-c",
              "echo 'payments-mock 1.4: loading fixtures'; echo 'listening on 127.0.0.1:8701'; echo ready; "
              "echo 'POST /charge 200 (3 ms)'; echo 'POST /refund 200 (2 ms)'; exec sleep 100000", env=lpd.env())
    browser = await chromium_cdp.Browser(window=(1280, 1000)).start()
    proc = None
    try:
        page = await browser.new_page(isolated=True)
        await page.navigate(f"{base}/?token={token}")
        await page.wait_for("document.body.dataset.loaded === 'true'", "the dashboard loaded")
        proc = subprocess.Popen([LPCTL_BIN, "--socket", lpd.socket, "run", "--name", "checkout", "--pause-on-failure",
                                 "--", PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_checkout.py"],
                                cwd=work, env=lpd.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await page.wait_for("document.querySelector('li.pause')", "the pause")
        await page.click("li.proc button")
        await page.wait_for("document.getElementById('log-text').textContent.includes('/refund')", "the helper log")
        await page.click("li.crash summary")
        await page.wait_for("document.querySelector('li.crash details').open", "the crash opened")
        await page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        await page.screenshot(args.screenshot)
        print(f"screenshot: {args.screenshot}")
        await page.click("li.pause button[data-action='resume']")
        await page.wait_for("!document.querySelector('li.pause')", "the pause resumed")
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        await browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build", "default"))
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--screenshot", help="make the README's screenshot at this path instead")
    args = parser.parse_args()
    setup_paths(os.path.abspath(args.build))
    import chromium_cdp
    from lpd_harness import Lpd
    if not chromium_cdp.find_chromium() or not chromium_cdp.websockets_client():
        sys.exit("needs Debian's chromium and python3-websockets (scripts/install-deps.sh)")

    lpd = Lpd().start("--http", "127.0.0.1:0")
    try:
        base = "http://" + lpd.lpctl_json("status")["http"]["address"]
        with open(os.path.join(lpd.state_dir, "http.token")) as f:
            token = f.read().strip()
        if args.screenshot:
            asyncio.run(screenshot(args, lpd, base, token))
            return
        make_runs(lpd, args.runs, args.tests)
        first, loaded = asyncio.run(measure(args, base, token))
        print(f"dashboard, {args.loads} loads, {args.runs} ended runs x {args.tests} tests + 1 active run "
              f"(headless chromium, lpd --http on loopback):")
        for name, values in (("first render (runs list with data)", first),
                             ("loaded (counts, crashes, jobs of every run)", loaded)):
            print(f"  {name:46s} p50 {percentile(values, 0.5):7.1f} ms   p95 {percentile(values, 0.95):7.1f} ms   "
                  f"max {max(values):7.1f} ms")
    finally:
        lpd.kill_helpers()
        lpd.stop()
        shutil.rmtree(lpd.root, ignore_errors=True)


if __name__ == "__main__":
    main()
