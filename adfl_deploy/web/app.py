"""``adfl serve``'s web app (Starlette): a read-only view of one run's identity store, finished
or still being written by ``adfl track``.

- ``/``: one plain HTML page (``static/index.html``, no build step): the live mosaic, the
  identity gallery with a per-camera timeline for each identity, search by uploaded image and
  the per-stage latency;
- ``/api/run``, ``/api/identities``, ``/api/identities/{id}``, ``/api/latency``: JSON;
- ``/api/thumbnails/{id}.jpg``: a stored crop; ``/live.jpg`` the latest mosaic, ``/live.mjpg``
  the same as an MJPEG stream while the run goes on;
- ``POST /api/search?top=N``: the body is the image's bytes (JPEG/PNG), at most
  ``max_upload`` bytes (413 beyond), decoded with ``cv2.imdecode`` (415 if it is not an image).

The store is opened read-only (``mode=ro``) and re-read on every request, so a live run's new
identities appear as they are committed. Every read runs on a worker thread (one connection,
one lock), and the model embeds an upload under its own lock, so a slow query or the first
search loading the model never stalls the event loop (the MJPEG streams, the other requests).
With ``token`` set every request needs it (header ``Authorization: Bearer TOKEN``, the
``adfl_token`` cookie, or ``?token=TOKEN``): 401 otherwise. Opening the page as ``/?token=TOKEN``
(the link ``adfl serve`` prints) answers with that cookie (HttpOnly, SameSite=Strict) and a
redirect to ``/``, so the token leaves the address bar, the history and every later URL: the
page's images and streams then carry the cookie. With ``allowed_hosts`` (what ``adfl
serve`` passes when it binds to this machine only) a request whose ``Host`` header names another
server is refused (400): a web page elsewhere cannot rebind its own name to 127.0.0.1 and read
the gallery through the browser. A store that cannot be read is a one-line JSON error (500).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import threading
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.websockets import WebSocket

from adfl_deploy.errors import AdflError, ConfigError
from adfl_deploy.store.search import Store, hit_dict
from adfl_deploy.web.images import MAX_BYTES, decode_image

STATIC = Path(__file__).parent / "static"
LIVE_PERIOD_S = 0.2


def create_app(
    db: str | Path,
    token: str | None = None,
    model: str | None = None,
    max_upload: int = MAX_BYTES,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    store = Store(db)
    lock = threading.Lock()  # one read-only connection, shared by the worker threads
    embed_lock = threading.Lock()  # the model (loaded by the first search), apart from the store

    def read(fn, *args):
        with lock:
            return fn(*args)

    def embed(image):
        with embed_lock:
            return store.embed(image, model)

    # plain ``def`` endpoints: Starlette runs them on its worker threads, never on the event loop
    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def run_info(request: Request) -> Response:
        return JSONResponse(read(store.run_info))

    def identities(request: Request) -> Response:
        return JSONResponse([asdict(i) for i in read(store.identities, None, True)])

    def identity(request: Request) -> Response:
        found = read(store.identities, [request.path_params["gid"]], True)
        if not found:
            return JSONResponse({"error": f"no identity {request.path_params['gid']}"}, status_code=404)
        return JSONResponse(asdict(found[0]))

    def thumbnail(request: Request) -> Response:
        data = read(store.thumbnail, request.path_params["tid"])
        if data is None:
            return JSONResponse({"error": "no such thumbnail"}, status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    def latency(request: Request) -> Response:
        return JSONResponse(read(store.latency))

    def live_jpg(request: Request) -> Response:
        _tick, jpeg = read(store.live_frame)
        if jpeg is None:
            return JSONResponse({"error": "no live frame yet"}, status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def live_mjpg(request: Request) -> Response:
        async def frames():
            last = object()
            while True:
                tick, jpeg = await asyncio.to_thread(read, store.live_frame)
                if jpeg is not None and tick != last:
                    last = tick
                    yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)
                if await asyncio.to_thread(read, store.finished) or await request.is_disconnected():
                    return
                await asyncio.sleep(LIVE_PERIOD_S)

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame")

    async def search(request: Request) -> Response:
        try:
            top = int(request.query_params.get("top", "10"))
        except ValueError:
            return JSONResponse({"error": "top must be a whole number"}, status_code=400)
        if not 1 <= top <= 100:
            return JSONResponse({"error": "top must be 1..100"}, status_code=400)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_upload):
            return JSONResponse({"error": f"upload larger than {max_upload} bytes"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload:
                return JSONResponse({"error": f"upload larger than {max_upload} bytes"}, status_code=413)
        try:
            image = await asyncio.to_thread(decode_image, bytes(body), "upload", max_upload)
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=415)
        try:
            vector = await asyncio.to_thread(embed, image)
            hits = await asyncio.to_thread(read, store.search, vector, top)
        except AdflError as exc:  # the run's model cannot be loaded here, or is not the run's
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"model": store.model.describe(), "hits": [hit_dict(h) for h in hits]})

    routes = [
        Route("/", index),
        Route("/api/run", run_info),
        Route("/api/identities", identities),
        Route("/api/identities/{gid:int}", identity),
        Route("/api/thumbnails/{tid:int}.jpg", thumbnail),
        Route("/api/latency", latency),
        Route("/api/search", search, methods=["POST"]),
        Route("/live.jpg", live_jpg),
        Route("/live.mjpg", live_mjpg),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        store.close()

    async def store_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=500)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={AdflError: store_error})
    app.state.store = store
    if token:
        app.add_middleware(_TokenMiddleware, token=token)
    if allowed_hosts:
        app.add_middleware(_HostMiddleware, hosts=allowed_hosts)  # the outermost: checked first
    return app


def _host_name(header: str) -> str:
    """The name in a ``Host`` header, without the port (``[::1]:8765`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _HostMiddleware:
    """400 unless the ``Host`` header names one of ``hosts`` (any port)."""

    def __init__(self, app, hosts: list[str]) -> None:
        self.app = app
        self.hosts = {_host_name(h) for h in hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = _host_name(Headers(scope=scope).get("host", ""))
            if host not in self.hosts:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = JSONResponse(
                    {"error": f"host {host!r} is not this server; open it as {sorted(self.hosts)[0]}"}, status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


#: the cookie that carries the access token after the first page load
TOKEN_COOKIE = "adfl_token"


class _TokenMiddleware:
    """401 unless the request carries the token (``Authorization: Bearer``, the cookie or
    ``?token=``); the page opened with ``?token=`` is redirected to itself without it, with
    the cookie set."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _matches(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        request = Request(scope) if scope["type"] == "http" else WebSocket(scope, receive, send)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        in_query = request.query_params.get("token") or ""
        if not any(self._matches(g) for g in (bearer, request.cookies.get(TOKEN_COOKIE, ""), in_query)):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = JSONResponse({"error": "missing or wrong access token (?token=... or Authorization: Bearer ...)"}, 401)
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and request.method == "GET" and request.url.path == "/" and self._matches(in_query):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            response = RedirectResponse("/" + (f"?{urlencode(rest)}" if rest else ""), 303)
            response.set_cookie(TOKEN_COOKIE, self.token.decode(), httponly=True, samesite="strict", path="/")
            response.headers["Cache-Control"] = "no-store"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["create_app"]
