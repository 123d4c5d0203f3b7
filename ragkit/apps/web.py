"""A small ASGI chat app: one offline HTML page and a Server-Sent-Events answer stream (``ragkit serve``).

``GET /`` is the page (vanilla JS, no CDN). ``GET /api/ask?q=…`` streams ``delta`` events (``{"text": …}``),
then one ``sources`` event (a list of ``{"n", "doc_id", "title"}``) and ``done`` (``{"intent", "model"}``);
a failure becomes an ``error`` event. Any object with ``astream(question)`` yielding ``Delta``s can answer:
a ``CatalogBot`` or a plain ``RAG``. ``ragkit.apps.web_guard`` adds the optional token, the bounded queue of
model requests (429 with ``Retry-After`` when full) and the security headers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import SecretStr

from ragkit.apps.web_guard import SESSION_COOKIE, Gate, SecurityHeaders, TokenCheck, security_headers
from ragkit.component import scrub
from ragkit.errors import ConfigError, RagkitError

log = logging.getLogger("ragkit.apps.web")

MAX_QUESTION_CHARS = 2000

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; }
  h1 { font-size: 1.3rem; }
  form { display: flex; gap: .5rem; }
  input { flex: 1; padding: .6rem; font-size: 1rem; border: 1px solid #9aa4b5; border-radius: 6px; }
  button { padding: .6rem 1rem; font-size: 1rem; border: 0; border-radius: 6px; background: #2457c5; color: #fff; }
  button:disabled { background: #8da2d1; }
  .turn { margin-top: 1.2rem; }
  .q { font-weight: 600; }
  .a { white-space: pre-wrap; margin: .4rem 0; line-height: 1.45; }
  .sources { font-size: .85rem; color: #4b5568; margin: 0; padding-left: 1.2rem; }
  .error { color: #b3261e; }
  footer { margin-top: 2rem; font-size: .75rem; color: #6b7385; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<form id="ask">
  <input id="question" name="q" autocomplete="off" placeholder="e.g. What does LABO-288 cost? / Was kostet LABO-288?" autofocus>
  <button id="send" type="submit">Ask</button>
</form>
<div id="log"></div>
<footer>__NOTE__</footer>
<script>
const form = document.getElementById("ask"), input = document.getElementById("question");
const send = document.getElementById("send"), log = document.getElementById("log");
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text) e.textContent = text; return e; }
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = input.value.trim();
  if (!q) return;
  const turn = el("div", "turn"), answer = el("div", "a"), sources = el("ol", "sources");
  turn.append(el("div", "q", q), answer, sources);
  log.prepend(turn);
  input.value = ""; send.disabled = true;
  const stream = new EventSource("api/ask?q=" + encodeURIComponent(q));
  const finish = () => { stream.close(); send.disabled = false; input.focus(); };
  stream.addEventListener("delta", (e) => { answer.textContent += JSON.parse(e.data).text; });
  stream.addEventListener("sources", (e) => {
    for (const s of JSON.parse(e.data)) sources.append(el("li", "", s.title.includes(s.doc_id) ? s.title : s.title + " (" + s.doc_id + ")"));
  });
  stream.addEventListener("done", (e) => { turn.dataset.intent = JSON.parse(e.data).intent || ""; turn.classList.add("done"); finish(); });
  stream.addEventListener("error", (e) => {
    if (e.data) answer.append(el("div", "error", JSON.parse(e.data).message));
    else if (!turn.classList.contains("done")) answer.append(el("div", "error", "connection lost"));
    finish();
  });
});
</script>
</body>
</html>
"""


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode("utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sources_of(reply: Any) -> list[dict[str, Any]]:
    """A reply's sources as plain data: number, document id, title."""
    out = []
    for n, hit in enumerate(getattr(reply, "sources", ()) or (), 1):
        title = hit.chunk.metadata.get("title") or hit.chunk.doc_id
        out.append({"n": n, "doc_id": hit.chunk.doc_id, "title": str(title)})
    return out


LOCKED = (
    "<!doctype html><meta charset=utf-8><title>Token needed</title>"
    "<p>This chat needs its access token: open this address with <code>?token=</code> and the token added.</p>"
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ragkit"'}


def create_app(
    answerer: Any,
    *,
    title: str = "Product questions",
    note: str = "",
    token: SecretStr | str | None = None,
    max_concurrent: int = 2,
    max_queued: int = 8,
) -> Any:
    """The Starlette app; ``answerer.astream(question)`` yields ``Delta``s, the last carrying the ``Reply``.

    With ``token``, every route but ``/api/health`` needs it; at most ``max_concurrent`` answers run and
    ``max_queued`` wait, further questions get 429 with ``Retry-After``.
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
        from starlette.routing import Route
    except ImportError as e:
        raise ConfigError("the web app needs starlette and uvicorn: pip install 'ragkit[web]'") from e

    page = PAGE.replace("__TITLE__", _escape(title)).replace("__NOTE__", _escape(note))
    guard = TokenCheck(token) if token is not None else None
    gate = Gate(max_concurrent, max_queued)

    class Admitted(StreamingResponse):
        """A streamed answer that gives its place in the gate back however the response ends."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                gate.release()

    async def index(request: Request) -> Any:
        if guard is not None and "token" in request.query_params:
            if not guard.matches(request.query_params["token"]):
                return HTMLResponse(LOCKED, status_code=401, headers=CHALLENGE)
            # A session cookie instead, and the token out of the address bar and the history.
            response = RedirectResponse(request.url.path, status_code=303)
            secure = request.url.scheme == "https"
            response.set_cookie(SESSION_COOKIE, guard.session, httponly=True, samesite="strict", secure=secure)
            return response
        if guard is not None and not guard.allows(request.headers, request.cookies):
            return HTMLResponse(LOCKED, status_code=401, headers=CHALLENGE)
        return HTMLResponse(page)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def ask(request: Request) -> Any:
        if guard is not None and not guard.allows(request.headers, request.cookies):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401, headers=CHALLENGE)
        question = (request.query_params.get("q") or "").strip()
        if not question:
            return JSONResponse({"error": "missing query parameter q"}, status_code=400)
        if len(question) > MAX_QUESTION_CHARS:
            return JSONResponse({"error": f"question longer than {MAX_QUESTION_CHARS} characters"}, status_code=413)
        if not gate.admit():
            wait = gate.retry_after()
            busy = f"busy: {gate.admitted} questions are being answered or waiting; retry in {wait} s"
            return JSONResponse({"error": busy}, status_code=429, headers={"Retry-After": str(wait)})

        async def events():
            final = None
            try:
                async with gate.running():
                    async for delta in answerer.astream(question):
                        if delta.text:
                            yield _event("delta", {"text": delta.text})
                        if delta.reply is not None:
                            final = delta.reply
            except RagkitError as e:
                log.warning("answer failed: %s: %s", type(e).__name__, scrub(str(e)))
                yield _event("error", {"message": scrub(f"{type(e).__name__}: {e}")})
                return
            except Exception:  # a bug: the page says so, the log has the traceback
                log.exception("answer failed")
                yield _event("error", {"message": "internal error; the server log has the details"})
                return
            yield _event("sources", sources_of(final))
            meta = getattr(final, "metadata", {}) or {}
            yield _event("done", {"intent": meta.get("intent"), "model": getattr(final, "model", "")})

        try:
            return Admitted(
                events(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        except BaseException:
            gate.release()
            raise

    return Starlette(
        routes=[Route("/", index), Route("/api/health", health), Route("/api/ask", ask)],
        middleware=[Middleware(SecurityHeaders, headers=security_headers(page))],
    )


__all__ = ["create_app", "sources_of", "PAGE"]
