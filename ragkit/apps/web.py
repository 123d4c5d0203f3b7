"""A small ASGI chat app: one offline HTML page and a Server-Sent-Events answer stream (``ragkit serve``).

``GET /`` is the page (``ragkit/apps/static``: its script and style are inlined and allowed by hash, no CDN).
``POST /api/ask`` with ``{"q": …, "history": [{"role", "content"}, …]}`` (or ``GET /api/ask?q=…`` without history)
streams, as server-sent events: ``meta`` (``{"lang", "query"}``: the UI language the question is in and the
question as it was asked of the answerer), ``delta`` events (``{"text": …}``), one ``view`` event (cards and
tables: the reply's ``metadata["views"]``, else ``ragkit.apps.web_view``), one ``sources`` event (``{"n", "doc_id",
"title", "snippet", "terms"}`` each) and
``done`` (``{"intent", "model", "checks", "flags", "kept"}``: checks being ``{"unsupported", "removed",
"withdrawn"}``, flags the claims to mark in the answer with why, kept how many history messages fitted the budget);
a failure becomes an ``error`` event. ``POST /api/filter`` runs a filter table again (a chip removed).

Any object with ``astream(question, history=…)`` yielding ``Delta``s can answer: a ``CatalogBot`` or a plain
``RAG``. ``ragkit.apps.web_guard`` adds the optional token, the bounded queue of model requests (429 with
``Retry-After`` when full) and the security headers.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from pydantic import SecretStr

from ragkit.answer.abstention import NOT_ANSWERED
from ragkit.apps import web_view
from ragkit.apps.web_guard import SESSION_COOKIE, Gate, SecurityHeaders, TokenCheck, security_headers
from ragkit.component import scrub
from ragkit.errors import ConfigError, RagkitError

log = logging.getLogger("ragkit.apps.web")

MAX_QUESTION_CHARS = 2000
MAX_BODY_BYTES = 256 * 1024
HISTORY_TOKENS = 2048


def _static(name: str) -> str:
    return (resources.files("ragkit.apps") / "static" / name).read_text(encoding="utf-8")


def _page() -> str:
    page = _static("page.html")
    return page.replace("__STYLE__", _static("chat.css")).replace("__SCRIPT__", _static("chat.js"))


PAGE = _page()


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


def _withdrawal(abstention: Any) -> str:
    return NOT_ANSWERED if abstention.before_generation else f"the answer was: {abstention.original_text}"


def checks_of(reply: Any) -> dict[str, Any]:
    """What the grounding and abstention checks found: unsupported claims, removed sentences, a withdrawal."""
    meta = getattr(reply, "metadata", {}) or {}
    grounding, abstention = meta.get("grounding"), meta.get("abstention")
    withdrawn = getattr(abstention, "reason", None)
    return {
        "unsupported": list(getattr(grounding, "unsupported", ())),
        "removed": list(getattr(grounding, "removed", ())),
        "withdrawn": withdrawn and f"{withdrawn}; {_withdrawal(abstention)}",
    }


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
    history_tokens: int = HISTORY_TOKENS,
) -> Any:
    """The Starlette app; ``answerer.astream(question, history=…)`` yields ``Delta``s, the last carrying the ``Reply``.

    With ``token``, every route but ``/api/health`` needs it; at most ``max_concurrent`` answers run and
    ``max_queued`` wait, further questions get 429 with ``Retry-After``. The page's history is trimmed to
    ``history_tokens`` before it reaches the answerer.
    """
    try:
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.requests import Request
        from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
        from starlette.routing import Route
    except ImportError as e:
        raise ConfigError("the web app needs starlette and uvicorn: pip install 'ragkit[web]'") from e
    from ragkit.answer.budget import tiktoken_counter

    page = PAGE.replace("__TITLE__", _escape(title)).replace("__NOTE__", _escape(note))
    guard = TokenCheck(token) if token is not None else None
    gate = Gate(max_concurrent, max_queued)
    count = tiktoken_counter()

    class Admitted(StreamingResponse):
        """A streamed answer that gives its place in the gate back however the response ends."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                gate.release()

    def refused(request: Request) -> Any:
        if guard is not None and not guard.allows(request.headers, request.cookies):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401, headers=CHALLENGE)
        return None

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ValueError(f"request body over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(raw or b"{}")
        except ValueError as e:
            raise ValueError(f"request body is not JSON: {e}") from e

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

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)  # no icon, and no 404 in the browser's console

    async def ask(request: Request) -> Any:
        if (no := refused(request)) is not None:
            return no
        raw_history: Any = None
        if request.method == "POST":
            try:
                body = await body_of(request)
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object {'q': question, 'history': [...]}")
                question, raw_history = str(body.get("q") or "").strip(), body.get("history")
                history = web_view.history_of(raw_history, count, history_tokens)
            except ValueError as e:
                return JSONResponse({"error": str(e)}, status_code=400)
        else:
            question, history = (request.query_params.get("q") or "").strip(), []
        if not question:
            return JSONResponse({"error": "missing question q"}, status_code=400)
        if len(question) > MAX_QUESTION_CHARS:
            return JSONResponse({"error": f"question longer than {MAX_QUESTION_CHARS} characters"}, status_code=413)
        if not gate.admit():
            wait = gate.retry_after()
            busy = f"busy: {gate.admitted} questions are being answered or waiting; retry in {wait} s"
            return JSONResponse({"error": busy}, status_code=429, headers={"Retry-After": str(wait)})
        lang = web_view.lang_of(question)
        asked = web_view.follow_up(question, history, answerer)

        async def events():
            final = None
            try:
                yield _event("meta", {"lang": lang, "query": asked})
                async with gate.running():
                    async for delta in answerer.astream(asked, history=tuple(history)):
                        if delta.text:
                            yield _event("delta", {"text": delta.text})
                        if delta.reply is not None:
                            final = delta.reply
                meta = getattr(final, "metadata", {}) or {}
                views = meta.get("views") or await web_view.views_of(final, answerer, lang)
            except RagkitError as e:
                log.warning("answer failed: %s: %s", type(e).__name__, scrub(str(e)))
                yield _event("error", {"message": scrub(f"{type(e).__name__}: {e}")})
                return
            except Exception:  # a bug: the page says so, the log has the traceback
                log.exception("answer failed")
                yield _event("error", {"message": "internal error; the server log has the details"})
                return
            yield _event("view", views)
            yield _event("sources", web_view.sources_view(final, asked))
            yield _event(
                "done",
                {
                    "intent": meta.get("intent"),
                    "model": getattr(final, "model", ""),
                    "query": meta.get("query") or asked,
                    "checks": checks_of(final),
                    "flags": web_view.flags_of(final),
                    "kept": len(history),
                },
            )

        try:
            return Admitted(
                events(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        except BaseException:
            gate.release()
            raise

    async def refilter(request: Request) -> Any:
        if (no := refused(request)) is not None:
            return no
        if getattr(answerer, "tools", None) is None:
            return JSONResponse({"error": "this answerer has no catalog to filter"}, status_code=404)
        try:
            body = await body_of(request)
            args = web_view.filter_request(body)
            lang = "de" if body.get("lang") == "de" else "en"
            return JSONResponse(await web_view.CatalogView(answerer, lang).filter(args))
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/health", health),
            Route("/favicon.ico", favicon),
            Route("/api/ask", ask, methods=["GET", "POST"]),
            Route("/api/filter", refilter, methods=["POST"]),
        ],
        middleware=[Middleware(SecurityHeaders, headers=security_headers(page))],
    )


__all__ = ["create_app", "sources_of", "checks_of", "PAGE"]
