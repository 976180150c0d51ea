"""Drives Debian's headless chromium over the Chrome DevTools Protocol with
python3-websockets (10.x, asyncio client): no selenium, nothing from pip.
Used by tests/e2e/test_dashboard.py and bench/dashboard_bench.py (issue 16,
h16dash).

Every wait is an event: a line chromium prints, a CDP reply or event, or a
promise evaluated in the page that a MutationObserver resolves when a
condition holds. Nothing sleeps for a duration."""

import asyncio
import base64
import itertools
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def find_chromium():
    """The path of chromium, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def websockets_client():
    """python3-websockets' asyncio client module, or None when it is not installed."""
    try:
        import websockets.client  # noqa: F401  (Debian's python3-websockets)
        return websockets.client
    except ImportError:
        return None


class CdpError(Exception):
    """A CDP command failed, or the page's wait rejected."""


# A promise that resolves with cond()'s first truthy value, checked now and
# at each DOM change; it rejects after `timeout_ms` (the test's bound, not a
# pause: nothing waits for the timer when the condition holds).
WAIT_JS = """
(cond, timeoutMs, what) => new Promise((resolve, reject) => {
  let observer = null, timer = null;
  const check = () => {
    let value;
    try { value = cond(); } catch (e) { value = undefined; }
    if (value) {
      if (observer) observer.disconnect();
      clearTimeout(timer);
      resolve(value);
      return true;
    }
    return false;
  };
  if (check()) return;
  observer = new MutationObserver(check);
  observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  timer = setTimeout(() => {
    observer.disconnect();
    let state = '';
    try { state = document.body ? document.body.innerText.slice(0, 3000) : ''; } catch (e) {}
    reject(new Error('timed out after ' + timeoutMs + ' ms waiting for ' + what + '\\n--- page text ---\\n' + state));
  }, timeoutMs);
})
"""


class Browser:
    """One headless chromium with a fresh profile in `profile_dir` (removed
    by close()), reached over its DevTools WebSocket."""

    def __init__(self, chromium=None, profile_dir=None, window=(1280, 900)):
        self.chromium = chromium or find_chromium()
        self.profile_dir = profile_dir or tempfile.mkdtemp(prefix="lpd-chromium-")
        self.window = window
        self.proc = None
        self.ws = None
        self._ids = itertools.count(1)
        self._pending = {}
        self._listeners = []
        self._reader = None

    async def start(self, timeout=60):
        args = [self.chromium, "--headless=new", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile_dir}", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                "--password-store=basic", "--use-mock-keychain",
                f"--window-size={self.window[0]},{self.window[1]}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # chromium refuses to run as root with its sandbox
        args.append("about:blank")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        url = await asyncio.get_running_loop().run_in_executor(None, self._devtools_url, timeout)
        client = websockets_client()
        self.ws = await client.connect(url, max_size=64 << 20, ping_interval=None)
        self._reader = asyncio.ensure_future(self._read())
        return self

    def _devtools_url(self, timeout):
        """Reads chromium's stderr until it prints its DevTools address."""
        deadline = time.monotonic() + timeout
        seen = []
        fd = self.proc.stderr.fileno()
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("chromium printed no DevTools address:\n" + "".join(seen))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise CdpError(f"chromium exited ({self.proc.wait()}) before it listened:\n" + "".join(seen))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                seen.append(text + "\n")
                if text.startswith("DevTools listening on "):
                    # From here a thread reads (and drops) the rest of stderr.
                    self._drain_stderr()
                    return text[len("DevTools listening on "):].strip()

    def _drain_stderr(self):
        """Chromium keeps writing to stderr: a daemon thread reads it from
        now on, so a full pipe never blocks chromium."""
        def drain(fd):
            try:
                while os.read(fd, 65536):
                    pass
            except OSError:
                pass
        threading.Thread(target=drain, args=(self.proc.stderr.fileno(),), daemon=True).start()

    async def _read(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "id" in msg:
                    future = self._pending.pop(msg["id"], None)
                    if future is not None and not future.done():
                        future.set_result(msg)
                else:
                    for listener in list(self._listeners):
                        listener(msg)
        except Exception as e:  # the connection ended: fail whoever waits
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError(f"DevTools connection ended: {e!r}"))

    async def send(self, method, params=None, session=None, timeout=60):
        """One CDP command; returns its result, raises CdpError on an error."""
        msg_id = next(self._ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        future = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def new_page(self, isolated=False):
        """A new tab (in a context of its own, storage and cookies included, when `isolated`)."""
        params = {"url": "about:blank"}
        if isolated:
            params["browserContextId"] = (await self.send("Target.createBrowserContext"))["browserContextId"]
        target = (await self.send("Target.createTarget", params))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, session, target)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send("Emulation.setDeviceMetricsOverride",
                        {"width": self.window[0], "height": self.window[1], "deviceScaleFactor": 1, "mobile": False})
        return page

    async def close(self):
        if self.ws is not None:
            try:
                await self.send("Browser.close", timeout=10)
            except Exception:
                pass
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile_dir, ignore_errors=True)


class Page:
    """One tab, addressed by its flattened CDP session."""

    def __init__(self, browser, session, target):
        self.browser = browser
        self.session = session
        self.target = target
        self.console = []  # console messages and uncaught exceptions, for failure reports
        browser._listeners.append(self._on_event)

    def _on_event(self, msg):
        if msg.get("sessionId") != self.session:
            return
        if msg.get("method") == "Runtime.consoleAPICalled":
            args = msg["params"].get("args", [])
            self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif msg.get("method") == "Runtime.exceptionThrown":
            details = msg["params"].get("exceptionDetails", {})
            self.console.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))

    async def send(self, method, params=None, timeout=60):
        return await self.browser.send(method, params, session=self.session, timeout=timeout)

    async def navigate(self, url, timeout=60):
        """Loads `url` and returns once its load event fired."""
        async def go():
            result = await self.send("Page.navigate", {"url": url})
            if result.get("errorText"):
                raise CdpError(f"navigating to {url}: {result['errorText']}")
        await self.until_loaded(go, timeout)

    async def until_loaded(self, action, timeout=60):
        """Awaits `action()` (a navigation, a click on a link, ...), then
        returns once the page it led to fired its load event."""
        loop = asyncio.get_running_loop()
        loaded = loop.create_future()

        def on_load(msg):
            if msg.get("sessionId") == self.session and msg.get("method") == "Page.loadEventFired":
                if not loaded.done():
                    loaded.set_result(True)
        self.browser._listeners.append(on_load)
        try:
            await action()
            await asyncio.wait_for(loaded, timeout)
        finally:
            self.browser._listeners.remove(on_load)

    async def evaluate(self, expression, await_promise=True, timeout=60):
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = await self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": await_promise,
                                                      "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CdpError(f"{text}\nconsole: {self.console[-20:]}")
        return result.get("result", {}).get("value")

    async def wait_for(self, condition_js, what=None, timeout=60):
        """Resolves with the first truthy value of the JavaScript expression
        `condition_js`, re-checked at every DOM change in the page."""
        what = what or condition_js
        expression = f"({WAIT_JS})(() => ({condition_js}), {int(timeout * 1000)}, {json.dumps(what)})"
        return await self.evaluate(expression, timeout=timeout + 10)

    async def click(self, selector):
        """A real mouse click (Input.dispatchMouseEvent press and release) at
        the centre of the element `selector` names, scrolled into view."""
        box = await self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if box is None:
            raise CdpError(f"nothing matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": box["x"], "y": box["y"], "button": "left" if kind != "mouseMoved" else "none",
                      "clickCount": 1 if kind != "mouseMoved" else 0}
            await self.send("Input.dispatchMouseEvent", params)

    async def press_key(self, key, code=None, text=None, key_code=0):
        """A key press and release (Input.dispatchKeyEvent), as a keyboard gives them."""
        down = {"type": "keyDown" if text else "rawKeyDown", "key": key, "code": code or key,
                "windowsVirtualKeyCode": key_code}
        if text:
            down["text"] = text
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code or key,
                                                   "windowsVirtualKeyCode": key_code})

    async def type_text(self, text):
        await self.send("Input.insertText", {"text": text})

    async def screenshot(self, path, full_page=True):
        """Saves a PNG of the page (the whole document when `full_page`)."""
        params = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": max(size["width"], self.browser.window[0]),
                                "height": size["height"], "scale": 1})
        data = (await self.send("Page.captureScreenshot", params))["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    async def close(self):
        await self.browser.send("Target.closeTarget", {"targetId": self.target})
