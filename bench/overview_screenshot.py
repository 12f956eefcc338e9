"""Render the admin "SLA overview" in a real headless browser and save a screenshot (issue 11).

Not a benchmark (not listed in run.py): a look at the server-rendered SVG charts as a person
sees them. It needs Chromium (`apt-get install chromium`); the test suite checks the same page
through Django's test client, which needs nothing.

    .venv/bin/python bench/overview_screenshot.py [out.png]

It loads the demo data into a fresh SQLite file under var/, starts `runserver` on a free
loopback port, logs the demo admin in (a session cookie handed to Chromium through a one-time
login URL is not available, so the page is fetched with the session and saved with a <base>
pointing at the server, which serves the admin's CSS), takes the screenshot and checks that it
is a PNG of the requested size that is not blank.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 2200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def login(base: str) -> urllib.request.OpenerDirector:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/").read().decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    data = urlencode(
        {"csrfmiddlewaretoken": token, "username": "demo-admin", "password": "demo-admin", "next": "/admin/"}
    )
    opener.open(urllib.request.Request(f"{base}/admin/login/", data.encode(), headers={"Referer": f"{base}/admin/"}))
    return opener


def png_pixels_vary(path: Path) -> tuple[int, int, bool]:
    """(width, height, whether the image is more than one colour) of an 8-bit RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    chunks, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            chunks += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(chunks)
    stride = 1 + width * (4 if colour == 6 else 3)
    rows = {raw[row * stride + 1 : (row + 1) * stride] for row in range(0, height, max(1, height // 50))}
    return width, height, len(rows) > 1 and depth == 8


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "var" / "sla_overview.png").resolve()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("Chromium is not installed (apt-get install chromium).", file=sys.stderr)
        return 1
    (ROOT / "var").mkdir(exist_ok=True)
    database = ROOT / "var" / "screenshot.sqlite3"
    database.unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "true", "ALLOWED_HOSTS": "127.0.0.1"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo", "--quiet"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        html = login(base).open(f"{base}/admin/reports/slaoverview/").read().decode()
        assert 'aria-label="Compliance per month"' in html or "No decided clocks" in html, "not the overview page"
        with tempfile.TemporaryDirectory() as tmp:
            page = Path(tmp) / "overview.html"
            page.write_text(html.replace("<head>", f'<head><base href="{base}/">', 1))
            subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--window-size={WIDTH},{HEIGHT}",
                    f"--screenshot={out}",
                    page.as_uri(),
                ],  # fmt: skip
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
    width, height, varies = png_pixels_vary(out)
    print(f"screenshot {out}: {width}x{height}, {'has content' if varies else 'BLANK'}")
    return 0 if (width, height) == (WIDTH, HEIGHT) and varies else 1


if __name__ == "__main__":
    sys.exit(main())
