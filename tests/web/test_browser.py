"""``adfl serve`` in a real browser: Debian's chromium, headless, driven through chromedriver by
Selenium. The page loads, its gallery shows the run's identities (read from the run's MOT files
and merges, not from the store), and uploading a crop of a generated scene's ground-truth box
lists that person's identity first. Skipped, with the reason, where chromium, chromedriver or
Selenium is missing; ``.ci/run`` installs them, so CI runs it. ``ADFL_SCREENSHOT=PATH`` keeps the
screenshot (the README's picture)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from adfl_deploy.cli import main

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def browser():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("no chromium/chromedriver on PATH (apt-get install chromium chromium-driver; .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def run(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-run") / "track"
    args = ["track", "--out", str(out)]
    for cam in scene.cameras:
        args += ["--source", f"{cam}={scene.video(cam)}", "--set", f"detections.{cam}={scene.gt(cam)}"]
    assert main(args) == 0
    return out


def run_identities(run: Path) -> dict[int, set[tuple[str, int, tuple]]]:
    """global id (after merges) -> its MOT rows (camera, frame, box): from the run's files."""
    merges = {}
    for line in (run / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "global_id_merged":
            merges[record["merged"]] = record["kept"]
    out: dict[int, set] = {}
    for mot in (run / "mot").glob("*.txt"):
        for row in np.loadtxt(mot, delimiter=",", ndmin=2):
            gid = int(row[1])
            while gid in merges:
                gid = merges[gid]
            out.setdefault(gid, set()).add((mot.stem, int(row[0]), tuple(np.round(row[2:6], 1))))
    return out


def query_crop(scene, run: Path, folder: Path) -> tuple[Path, int]:
    """A ground-truth crop of the person seen longest, one frame after a frame the run embedded,
    and the global id that carries that person's boxes most often."""
    import sqlite3

    ids = run_identities(run)
    cam = scene.cameras[0]
    gt = np.loadtxt(scene.gt(cam), delimiter=",", ndmin=2)
    gt = gt[(gt[:, 6] > 0) & (gt[:, 5] >= 60)]
    person = int(np.bincount(gt[:, 1].astype(int)).argmax())
    rows = gt[gt[:, 1] == person]
    votes = {
        gid: sum(1 for c, f, b in boxes if c == cam and any((r[0] == f and tuple(np.round(r[2:6], 1)) == b) for r in rows))
        for gid, boxes in ids.items()
    }
    expected = max(votes, key=votes.get)
    conn = sqlite3.connect(run / "adfl.db")
    embedded = {
        f
        for c, f in conn.execute("SELECT t.camera, e.frame FROM embeddings e JOIN tracklets t ON t.id = e.tracklet_id")
        if c == cam
    }
    conn.close()
    row = next(r for r in rows if int(r[0]) - 2 in embedded and int(r[0]) - 1 not in embedded)
    cap = cv2.VideoCapture(str(scene.video(cam)))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(row[0]) - 1)
    ok, image = cap.read()
    cap.release()
    assert ok
    x, y, w, h = (int(v) for v in row[2:6])
    path = folder / "query.png"
    cv2.imwrite(str(path), image[max(0, y) : y + h, max(0, x) : x + w])
    return path, expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(run):
    yield from serve(run)


@pytest.fixture
def server_with_token(run):
    yield from serve(run, token="s3cret")


def serve(run, token=None):
    import uvicorn

    from adfl_deploy.web.app import create_app

    port = free_port()
    app = create_app(run / "adfl.db", token=token)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


def test_the_page_shows_the_runs_identities_and_finds_a_person_by_upload(scene, run, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected_ids = set(run_identities(run))
    query, expected = query_crop(scene, run, tmp_path)
    driver = browser()
    try:
        driver.get(server)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card")) == len(expected_ids))
        shown = {int(c.get_attribute("data-id")) for c in driver.find_elements(By.CSS_SELECTOR, "#gallery .card")}
        assert shown == expected_ids
        assert "finished" in driver.find_element(By.ID, "run").text
        wait.until(
            lambda d: d.execute_script("const i = document.getElementById('mosaic'); return i.complete && i.naturalWidth > 0")
        )
        driver.find_element(By.ID, "query").send_keys(str(query))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
        hits = driver.find_elements(By.CSS_SELECTOR, "#results .hit")
        assert int(hits[0].get_attribute("data-id")) == expected
        hits[0].click()  # its timeline: one bar per sighting, in the cameras it was seen in
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .bar"))
        bars = driver.find_elements(By.CSS_SELECTOR, "#timeline .bar")
        assert len(bars) >= 1
        wait.until(lambda d: "p99" in d.find_element(By.ID, "latency").text)
        shot = Path(os.environ.get("ADFL_SCREENSHOT") or tmp_path / "page.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(shot))
        assert cv2.imread(str(shot)) is not None
    finally:
        driver.quit()


def test_with_a_token_the_page_drops_it_from_the_address_and_still_loads_everything(run, server_with_token):
    """Opened through the link ``adfl serve --token`` prints, the page ends at ``/`` (the token
    moved to a cookie) and its gallery, thumbnails and mosaic still load."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    try:
        driver.get(server_with_token + "?token=s3cret")
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery .card")) == len(run_identities(run)))
        assert "token" not in driver.current_url
        wait.until(
            lambda d: d.execute_script(
                "return [...document.images].length > 1 && [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
        )
    finally:
        driver.quit()
