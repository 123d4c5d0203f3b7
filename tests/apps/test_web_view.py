"""The page's data contract without a browser: bad requests get one clear error, the history is trimmed to its
budget, follow-ups get the products named before, and a filter's view holds every match with "—" for gaps."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient  # noqa: E402

from ragkit.apps.web import create_app  # noqa: E402
from ragkit.apps.web_view import MISSING, filter_request, follow_up, highlight_terms, history_of  # noqa: E402
from ragkit.types import Delta, Message, Reply  # noqa: E402


class Echo:
    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[Message, ...]]] = []

    async def astream(self, question: str, *, history=(), **_):
        self.seen.append((question, tuple(history)))
        yield Delta(text="ok")
        yield Delta(reply=Reply(text="ok", model="echo"))


def words(text: str) -> int:
    return len(text.split())


def test_history_is_checked_and_trimmed_oldest_first():
    raw = [{"role": "user", "content": "one two three"}, {"role": "assistant", "content": "four five"}] * 3
    kept = history_of(raw, words, 2 * (7 + 6) + 6)  # 4 tokens a message on top of its words
    assert [m.role for m in kept] == ["user", "assistant", "user", "assistant"], "the orphaned answer dropped too"
    with pytest.raises(ValueError, match=r"history\[1\]"):
        history_of([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], words, 100)
    with pytest.raises(ValueError, match="list"):
        history_of({"role": "user"}, words, 100)


def test_bad_requests_get_one_clear_error():
    app = create_app(Echo())
    with TestClient(app) as client:
        assert client.post("/api/ask", content=b"{not json").json()["error"].startswith("request body is not JSON")
        r = client.post("/api/ask", json={"q": "hi", "history": [{"role": "robot", "content": "x"}]})
        assert r.status_code == 400 and "history[0]" in r.json()["error"]
        assert client.post("/api/ask", json={"q": " "}).status_code == 400
        assert client.post("/api/ask", json=["q"]).status_code == 400
        assert client.post("/api/ask", json={"q": "x" * 3000}).status_code == 413
        r = client.post("/api/filter", json={"args": {}})
        assert r.status_code == 404 and "no catalog" in r.json()["error"]


def test_the_history_reaches_the_answerer_and_the_meta_event_names_the_language():
    echo = Echo()
    with TestClient(create_app(echo)) as client:
        history = [{"role": "user", "content": "Was kostet LABO-288?"}, {"role": "assistant", "content": "2490 EUR"}]
        body = client.post("/api/ask", json={"q": "Und wie groß ist er?", "history": history}).text
    assert body.startswith('event: meta\ndata: {"lang": "de"')
    assert '"kept": 2' in body
    question, seen = echo.seen[-1]
    assert question == "Und wie groß ist er?" and [m.content for m in seen] == ["Was kostet LABO-288?", "2490 EUR"]


def test_filter_requests_name_the_bad_argument():
    with pytest.raises(ValueError, match="'limit'"):
        filter_request({"args": {"limit": 5}})
    with pytest.raises(ValueError, match="'where' must be a list"):
        filter_request({"args": {"where": {"attribute": "price"}}})
    with pytest.raises(ValueError, match="JSON object"):
        filter_request([])
    assert filter_request({"args": {"category": ["freezer"]}}) == {"category": ["freezer"]}


class FakeResolver:
    def find(self, text):
        ids = [w.strip("?.,()") for w in text.split() if w.strip("?.,()").startswith("LAB")]
        return type("Entities", (), {"product_ids": lambda self: ids})()


def test_a_follow_up_gets_the_products_named_last():
    bot = type("Bot", (), {"resolver": FakeResolver()})()
    history = [Message("user", "Compare LAB-1 and LAB-2"), Message("assistant", "LAB-1 is cheaper than LAB-2.")]
    assert follow_up("And the larger one?", history, bot) == "And the larger one? LAB-1 or LAB-2"
    assert follow_up("Und das größere?", history, bot) == "Und das größere? LAB-1 oder LAB-2"
    assert follow_up("What does LAB-3 cost?", history, bot) == "What does LAB-3 cost?", "names its own product"
    assert follow_up("And the larger one?", [], bot) == "And the larger one?"
    assert follow_up("And the larger one?", history, Echo()) == "And the larger one?", "not a catalog bot"


def test_highlighting_splits_on_every_term_case_insensitively():
    assert highlight_terms("Holds 288 litres; HOLDS", ["holds"]) == [
        ("Holds", True),
        (" 288 litres; ", False),
        ("HOLDS", True),
    ]
    assert highlight_terms("plain", []) == [("plain", False)]
    assert MISSING == "—"
