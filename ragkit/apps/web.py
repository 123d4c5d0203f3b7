"""A small ASGI chat app: one offline HTML page and a Server-Sent-Events answer stream (``ragkit serve``).

``GET /`` is the page (vanilla JS, no CDN). ``GET /api/ask?q=…`` streams ``delta`` events (``{"text": …}``),
then one ``sources`` event (a list of ``{"n", "doc_id", "title"}``) and ``done`` (``{"intent", "model"}``);
a failure becomes an ``error`` event. Any object with ``astream(question)`` yielding ``Delta``s can answer:
a ``CatalogBot`` or a plain ``RAG``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

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


def create_app(answerer: Any, *, title: str = "Product questions", note: str = "") -> Any:
    """The Starlette app; ``answerer.astream(question)`` yields ``Delta``s, the last carrying the ``Reply``."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
        from starlette.routing import Route
    except ImportError as e:
        raise ConfigError("the web app needs starlette and uvicorn: pip install 'ragkit[web]'") from e

    page = PAGE.replace("__TITLE__", _escape(title)).replace("__NOTE__", _escape(note))

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def ask(request: Request) -> Any:
        question = (request.query_params.get("q") or "").strip()
        if not question:
            return JSONResponse({"error": "missing query parameter q"}, status_code=400)
        if len(question) > MAX_QUESTION_CHARS:
            return JSONResponse({"error": f"question longer than {MAX_QUESTION_CHARS} characters"}, status_code=413)

        async def events():
            final = None
            try:
                async for delta in answerer.astream(question):
                    if delta.text:
                        yield _event("delta", {"text": delta.text})
                    if delta.reply is not None:
                        final = delta.reply
            except RagkitError as e:
                log.warning("answer failed: %s: %s", type(e).__name__, e)
                yield _event("error", {"message": f"{type(e).__name__}: {e}"})
                return
            yield _event("sources", sources_of(final))
            meta = getattr(final, "metadata", {}) or {}
            yield _event("done", {"intent": meta.get("intent"), "model": getattr(final, "model", "")})

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    return Starlette(routes=[Route("/", index), Route("/api/health", health), Route("/api/ask", ask)])


__all__ = ["create_app", "sources_of", "PAGE"]
