"""Headless Chromium, driven over the DevTools protocol on a pipe: no WebDriver, no npm.

    with serve(folder) as base_url, Chromium() as chromium:
        tab = chromium.open(f"{base_url}/index.html?...")
        tab.wait_for("document.body.dataset.state === 'done'")
        png = tab.screenshot()

Chromium is started with `--remote-debugging-pipe`: it reads protocol
commands on fd 3 and writes replies on fd 4, NUL-separated JSON. `serve`
runs a static server on 127.0.0.1 in a thread. Used by tests/test_web.py,
`bench.web` and `tools.web_screenshot`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import itertools
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time

from exchange_st.web import page as web_page

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium():
    """The path of a Chromium (or Chrome) binary, `$CHROMIUM` first; None if there is none."""
    for name in (os.environ.get("CHROMIUM"), *CANDIDATES):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _move_above(fd, low):
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return moved


class BrowserError(RuntimeError):
    """Chromium failed, or a page did not reach the awaited state in time."""


class ChromiumGone(BrowserError):
    """Chromium exited or stopped answering: no later command can succeed."""


@contextlib.contextmanager
def serve(folder):
    """Serves `folder` on 127.0.0.1 (a free port) for the block; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=os.fspath(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def page_with_files(web_dir, files):
    """A temporary copy of the page folder `web_dir` with `files` (`{stem: path}`) beside it.

    Yields `(folder, {stem: file name})`; the page can then load the files by
    relative URL, and `web_dir` itself is never written to.
    """
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "site")
        shutil.copytree(web_dir, folder)
        names = {}
        for stem, path in files.items():
            names[stem] = stem + os.path.splitext(path)[1]
            shutil.copy(path, os.path.join(folder, names[stem]))
        yield folder, names


def stylized_status(tab, timeout):
    """Waits until the exchange_st page has finished stylizing; returns its status line.

    Raises:
      BrowserError: the page reported an error, or did not finish in `timeout` s.
    """
    tab.wait_for(web_page.JS_FINISHED, timeout)
    status = tab.evaluate(web_page.JS_STATUS)
    if not status.startswith("Done"):
        raise BrowserError(f"the page said: {status}")
    return status


class Chromium:
    """A headless Chromium process and its DevTools pipe."""

    def __init__(self, binary=None, window=(1280, 900)):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError("no Chromium found: install it (e.g. `apt install chromium`)")
        self.window = window
        self._ids = itertools.count(1)
        self._buffer = b""

    def __enter__(self):
        self._profile = tempfile.mkdtemp(prefix="exchange_st_chromium_")
        to_child, self._commands = os.pipe()
        self._replies, from_child = os.pipe()
        # Above 4, so that placing them at 3 and 4 in the child overwrites neither.
        to_child = _move_above(to_child, 10)
        from_child = _move_above(from_child, 10)

        def wire_pipes():
            os.dup2(to_child, 3)  # dup2 leaves the copies inheritable
            os.dup2(from_child, 4)

        self._process = subprocess.Popen(
            [
                self.binary,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # CI runs as root, where the sandbox cannot start
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self._profile}",
                f"--window-size={self.window[0]},{self.window[1]}",
                "about:blank",
            ],
            close_fds=False,  # the pipes at 3 and 4 stay; other descriptors are close-on-exec
            preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            os.close(self._commands)
        self._process.kill()
        self._process.wait()
        os.close(self._replies)
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method, params=None, session=None, timeout=60.0):
        """Sends one protocol command and returns its `result` (raises on an error reply)."""
        message = {"id": next(self._ids), "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _read(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumGone("Chromium did not answer in time")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise ChromiumGone("Chromium closed its DevTools pipe (it exited)")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url):
        """Opens `url` in a new tab; returns its `Page`."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        page.command("Page.enable")
        page.command("Page.navigate", {"url": url})
        return page


class Page:
    """One tab of a `Chromium`."""

    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def command(self, method, params=None, timeout=60.0):
        return self.browser.send(method, params, self.session, timeout)

    def evaluate(self, expression, timeout=60.0):
        """The JSON value of a JavaScript expression (awaited if it is a promise)."""
        result = self.command(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def wait_for(self, condition, timeout=300.0, poll=0.25):
        """Waits until the JavaScript `condition` is true; raises `BrowserError` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"Boolean({condition})"):
                    return
            except ChromiumGone:
                raise
            except BrowserError:
                pass  # e.g. no document.body yet, or a context replaced by navigation
            time.sleep(poll)
        raise BrowserError(f"the page did not reach `{condition}` in {timeout:.0f} s")

    def screenshot(self):
        """The visible page as PNG bytes."""
        return base64.b64decode(self.command("Page.captureScreenshot", {"format": "png"})["data"])
