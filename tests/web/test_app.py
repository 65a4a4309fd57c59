"""``adfl serve``'s endpoints through Starlette's TestClient, on a store written here from
hand-made crops with the colour-histogram embedder (no network: a red person is found by a red
query, a blue one by a blue query)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

from adfl_deploy.events import CropEmbedded, FrameTracked, GlobalIdAssigned, RunStarted, TickStats, TrackStarted
from adfl_deploy.runtime import create_embedder
from adfl_deploy.store.model import fingerprint
from adfl_deploy.store.writer import StoreWriter
from adfl_deploy.web.app import create_app

COLOURS = {1: (0, 0, 200), 2: (200, 0, 0), 3: (0, 200, 0)}  # BGR: red, blue, green people


def person(bgr, rng) -> np.ndarray:
    img = np.full((96, 40, 3), bgr, np.uint8)
    noise = rng.integers(-20, 20, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three identities in two cameras, four crops each, and one live mosaic frame."""
    path = tmp_path_factory.mktemp("store") / "adfl.db"
    embedder = create_embedder("colour-histogram")
    writer = StoreWriter(path, ["door", "hall"], fingerprint("colour-histogram"), live_fps=1000)
    rng = np.random.default_rng(0)
    writer.on_event(RunStarted("run-x", ("door", "hall"), "2026-12-01T00:00:00Z"))
    for gid, bgr in COLOURS.items():
        cam = "door" if gid != 2 else "hall"
        writer.on_event(TrackStarted(cam, gid, 0, float(gid), (0, 0, 40, 96)))
        writer.on_event(GlobalIdAssigned(cam, gid, gid, float(gid), True))
        for k in range(4):
            crop = person(bgr, rng)
            e = embedder.embed([crop])[0]
            writer.on_event(CropEmbedded(cam, gid, k, gid + k / 10, (0, 0, 40, 96), crop, e, 0.5 + k / 10, e))
    boxes = np.array([[0, 0, 40, 96]], np.float32)
    image = np.zeros((120, 160, 3), np.uint8)
    writer.on_event(FrameTracked("door", 5, 0.5, image, boxes, np.array([1]), np.ones(1, np.float32), [1]))
    writer.on_event(TickStats(1, {"detect": 1.0, "track": 0.2, "embed": 3.0, "associate": 0.1, "sink": 0.5}, {}, 1, 3))
    writer.close()
    return path


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture
def client(store):
    with TestClient(create_app(store)) as c:
        yield c


def test_run_identities_thumbnails_latency_and_the_live_frame(client):
    run = client.get("/api/run").json()
    assert run["run_id"] == "run-x" and run["finished"] and run["embeddings"] == 12 and run["identities"] == 3
    ids = client.get("/api/identities").json()
    assert [i["global_id"] for i in ids] == [1, 2, 3]  # by first seen
    assert ids[1]["cameras"] == ["hall"] and len(ids[1]["thumbnails"]) == 3
    assert ids[0]["sightings"][0]["camera"] == "door"
    thumb = client.get(f"/api/thumbnails/{ids[0]['thumbnails'][0]}.jpg")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR).shape[2] == 3
    assert client.get("/api/thumbnails/99999.jpg").status_code == 404
    assert client.get("/api/identities/42").status_code == 404
    assert client.get("/api/latency").json()["stages"]["embed"]["p50"] == pytest.approx(3.0)
    live = client.get("/live.jpg")
    assert live.status_code == 200 and cv2.imdecode(np.frombuffer(live.content, np.uint8), cv2.IMREAD_COLOR) is not None
    stream = client.get("/live.mjpg")  # a finished run: its last frame, then the stream ends
    assert stream.headers["content-type"].startswith("multipart/x-mixed-replace")
    assert stream.content.count(b"--frame") == 1 and b"\xff\xd8" in stream.content
    page = client.get("/")
    assert page.status_code == 200 and "Search by image" in page.text


@pytest.mark.parametrize("gid", [1, 2, 3])
def test_search_by_upload_finds_the_person_of_that_colour(client, gid):
    query = person(COLOURS[gid], np.random.default_rng(100 + gid))
    r = client.post("/api/search?top=3", content=jpeg(query), headers={"content-type": "image/jpeg"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits[0]["global_id"] == gid and len(hits) == 3
    assert hits[0]["score"] > hits[1]["score"]


def test_uploads_that_are_too_large_or_not_images_are_4xx(store):
    with TestClient(create_app(store, max_upload=2000)) as client:
        big = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
        assert len(jpeg(big)) > 2000
        assert client.post("/api/search", content=jpeg(big)).status_code == 413
        for junk in (b"", b"hello, not an image", b"\xff\xd8\xff\xe0" + b"\x00" * 100):
            r = client.post("/api/search", content=junk)
            assert r.status_code == 415 and "JPEG or PNG" in r.json()["error"]
        assert client.post("/api/search?top=0", content=b"x").status_code == 400
        assert client.post("/api/search?top=abc", content=b"x").status_code == 400

    # a small file claiming a huge image is refused from its header, before decoding
    png = bytearray(cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes())
    png[16:24] = (50000).to_bytes(4, "big") + (50000).to_bytes(4, "big")
    with TestClient(create_app(store)) as client:
        r = client.post("/api/search", content=bytes(png))
        assert r.status_code == 415 and "pixels" in r.json()["error"]


def test_a_token_is_required_when_set(store):
    with TestClient(create_app(store, token="s3cret")) as client:
        assert client.get("/api/run").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/api/run?token=wrong").status_code == 401
        assert client.get("/api/run", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/run?token=s3cret").status_code == 200
        assert client.get("/api/run", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.post("/api/search", content=b"x").status_code == 401


def test_the_page_opened_with_its_token_moves_it_to_a_cookie(store):
    """The printed link's ``?token=`` would stay in the address bar, the history and every image
    URL: the page answers with an HttpOnly cookie and a redirect to itself without it."""
    with TestClient(create_app(store, token="s3cret")) as client:
        r = client.get("/?token=s3cret&x=1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/?x=1"
        cookie = r.headers["set-cookie"].lower()
        assert cookie.startswith("adfl_token=s3cret") and "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/").status_code == 200  # the client now sends the cookie
        assert client.get("/api/run").status_code == 200
        assert client.get("/api/run?token=s3cret", follow_redirects=False).status_code == 200  # only the page redirects
    with TestClient(create_app(store, token="s3cret"), cookies={"adfl_token": "wrong"}) as client:
        assert client.get("/api/run").status_code == 401
        assert client.get("/?token=wrong", follow_redirects=False).status_code == 401


def test_a_search_with_another_model_than_the_runs_is_refused(store):
    with TestClient(create_app(store, model="")) as client:  # the shipped edge model, not the colour histogram
        query = person(COLOURS[1], np.random.default_rng(5))
        r = client.post("/api/search", content=jpeg(query))
        assert r.status_code == 409 and "was made with colour-histogram" in r.json()["error"]


def test_the_app_opens_the_store_read_only(store):
    import sqlite3

    app = create_app(store)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        app.state.store.conn.execute("DELETE FROM identities")


def test_a_live_run_is_re_read_while_it_is_written(tmp_path):
    """The app over a store that a writer is still filling: new identities appear, the MJPEG
    stream sends each new mosaic and ends once the run has finished."""
    writer = StoreWriter(tmp_path / "adfl.db", ["door"], fingerprint("colour-histogram"), live_fps=1000)
    embedder = create_embedder("colour-histogram")
    rng = np.random.default_rng(1)
    boxes = np.array([[0, 0, 40, 96]], np.float32)

    def add(gid: int, tick: int) -> None:
        crop = person(COLOURS[gid], rng)
        e = embedder.embed([crop])[0]
        writer.on_event(TrackStarted("door", gid, tick, float(tick), (0, 0, 40, 96)))
        writer.on_event(GlobalIdAssigned("door", gid, gid, float(tick), True))
        writer.on_event(CropEmbedded("door", gid, tick, float(tick), (0, 0, 40, 96), crop, e, 0.5, e))
        image = np.full((120, 160, 3), 40 * tick, np.uint8)
        writer.on_event(FrameTracked("door", tick, float(tick), image, boxes, np.array([gid]), np.ones(1, np.float32), [gid]))
        writer.on_event(TickStats(tick, {"detect": 1.0}, {}, 1, gid))

    def wait_for(condition) -> None:
        deadline = time.time() + 10
        while not condition() and time.time() < deadline:
            time.sleep(0.02)
        assert condition()

    add(1, 1)
    wait_for(lambda: writer.ticks_written >= 1)
    with TestClient(create_app(tmp_path / "adfl.db")) as client:
        assert client.get("/api/run").json()["finished"] is False
        assert [i["global_id"] for i in client.get("/api/identities").json()] == [1]
        add(2, 2)
        wait_for(lambda: writer.ticks_written >= 2)
        assert [i["global_id"] for i in client.get("/api/identities").json()] == [1, 2]
        r = client.post("/api/search?top=1", content=jpeg(person(COLOURS[2], rng)))
        assert r.json()["hits"][0]["global_id"] == 2  # the newest identity is searchable at once

        def finish() -> None:
            time.sleep(0.6)
            add(3, 3)
            writer.close()

        closer = threading.Thread(target=finish)
        closer.start()
        stream = client.get("/live.mjpg")  # returns once the run has finished
        closer.join()
        assert stream.content.count(b"--frame") >= 2  # the tick-2 mosaic, then a later one
        assert client.get("/api/run").json()["finished"] is True


def test_adfl_serve_refuses_a_missing_store_and_a_bad_port_in_one_line(tmp_path, capsys):
    from adfl_deploy.cli import main

    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no identity store" in err[0]
    assert main(["serve", str(tmp_path), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


# -- review: hostile uploads, ids, host names, and a slow search ----------------------------------


def _encoded(ext: str, shape) -> bytes:
    ok, data = cv2.imencode(ext, np.zeros(shape, np.uint8))
    assert ok
    return data.tobytes()


def test_formats_whose_size_the_header_does_not_give_are_never_decoded(monkeypatch):
    """A few hundred bytes of WebP (or TIFF, GIF, Radiance HDR) can decode to hundreds of
    megabytes: what cannot be measured from its header is refused before OpenCV decodes it."""
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.web import images

    decoded = []
    real = images.cv2.imdecode
    monkeypatch.setattr(images.cv2, "imdecode", lambda *a: decoded.append(1) or real(*a))
    webp = _encoded(".webp", (300, 300, 3))
    truncated_jpeg = _encoded(".jpg", (300, 300, 3))
    truncated_jpeg = truncated_jpeg[: truncated_jpeg.index(b"\xff\xc0") + 6]  # the frame header cut short
    for data in (webp, _encoded(".tiff", (300, 300, 3)), truncated_jpeg):
        with pytest.raises(ConfigError, match="JPEG or PNG"):
            images.decode_image(data, max_pixels=1000)
    assert decoded == []
    for ext in (".jpg", ".png", ".bmp"):  # sizes read from their headers: decoded when small enough
        assert images.decode_image(_encoded(ext, (30, 20, 3)), max_pixels=1000).shape == (30, 20, 3)
        with pytest.raises(ConfigError, match="pixels"):
            images.decode_image(_encoded(ext, (40, 30, 3)), max_pixels=1000)
    assert len(decoded) == 3


def test_a_webp_upload_is_415_before_decoding(client):
    r = client.post("/api/search", content=_encoded(".webp", (64, 32, 3)))
    assert r.status_code == 415 and "JPEG or PNG" in r.json()["error"]


def test_ids_beyond_sqlite_integers_are_404(client):
    huge = 10**25
    assert client.get(f"/api/thumbnails/{huge}.jpg").status_code == 404
    assert client.get(f"/api/identities/{huge}").status_code == 404


def test_a_damaged_store_is_a_one_line_json_error(store, tmp_path):
    import sqlite3

    copy = tmp_path / "adfl.db"
    copy.write_bytes(store.read_bytes())
    conn = sqlite3.connect(copy)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tracklets'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(copy, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\xa5" * size)
    with TestClient(create_app(copy), raise_server_exceptions=False) as client:
        r = client.get("/api/identities")
        assert r.status_code == 500 and "re-run adfl track" in r.json()["error"]


def test_other_host_names_are_refused_when_serving_this_machine_only(store, monkeypatch):
    """DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and reads the
    gallery through the browser, with the browser's Host header still saying evil.example."""
    import uvicorn

    from adfl_deploy.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    assert main(["serve", "--db", str(store)]) == 0
    assert served["host"] == "127.0.0.1"
    with TestClient(served["app"], base_url="http://127.0.0.1:8765") as client:
        assert client.get("/api/run").status_code == 200
        assert client.get("/api/run", headers={"Host": "localhost:8765"}).status_code == 200
        assert client.get("/api/run", headers={"Host": "[::1]:8765"}).status_code == 200
        r = client.get("/api/run", headers={"Host": "evil.example:8765"})
        assert r.status_code == 400 and "evil.example" in r.json()["error"]
    assert main(["serve", "--db", str(store), "--host", "0.0.0.0", "--token", "t"]) == 0  # any name: the token guards it
    with TestClient(served["app"], base_url="http://203.0.113.5:8765") as client:
        assert client.get("/api/run?token=t").status_code == 200


def test_a_slow_search_does_not_stall_the_gallery(store):
    """Embedding an upload (or loading the model on the first search) takes the model's lock,
    not the store's: the gallery and the other requests go on meanwhile."""
    import socket
    import urllib.request

    import uvicorn

    app = create_app(store)
    real_embed = app.state.store.embed

    def slow_embed(*args, **kwargs):
        time.sleep(3.0)
        return real_embed(*args, **kwargs)

    app.state.store.embed = slow_embed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        upload = jpeg(person(COLOURS[1], np.random.default_rng(2)))
        search = threading.Thread(
            target=lambda: urllib.request.urlopen(urllib.request.Request(f"{base}/api/search", data=upload), timeout=30).read()
        )
        search.start()
        time.sleep(0.5)  # the search is embedding now
        started = time.perf_counter()
        with urllib.request.urlopen(f"{base}/api/identities", timeout=30) as r:
            assert r.status == 200
        assert time.perf_counter() - started < 1.5  # not the 2.5 s the search has left
        search.join(30)
    finally:
        server.should_exit = True
        thread.join(10)
