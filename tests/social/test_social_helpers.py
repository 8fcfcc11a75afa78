"""The error mapping the platform modules share (``publisher.channels.social``), over real requests under
``responses``: what may have made a post is unconfirmed, what cannot have is "not sent"."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from publisher.channels.social import (
    DEFAULT_RATE_LIMIT_WAIT,
    DuplicatePost,
    NoConnection,
    OutcomeUnknown,
    PostNotSent,
    RateLimited,
    graph_answer,
    json_or_none,
    network_failure,
    refused,
    retry_after_wait,
    send_request,
)

URL = "https://graph.example.test/v1.0/42/feed"


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> requests.Response:
    """A real ``requests.Response`` as a server under ``responses`` gave it."""
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, status=status, headers=headers or {},
                 body=body if isinstance(body, str) else json.dumps(body) if body is not None else "")
        return requests.post(URL, timeout=5)


@pytest.mark.parametrize(("status", "may_have_posted", "kind", "message"), [
    (503, True, OutcomeUnknown, "could not post to P: P answered 503; the post may exist"),
    (503, False, PostNotSent, "could not post to P: P answered 503"),
    (400, True, PostNotSent, "could not post to P: P answered 503"),
])
def test_refused_is_unconfirmed_only_for_a_5xx_to_what_may_have_posted(
        status: int, may_have_posted: bool, kind: type[Exception], message: str) -> None:
    failure = refused(status, "post to P", "P answered 503", may_have_posted=may_have_posted)
    assert type(failure) is kind
    assert str(failure) == message


def test_a_read_timeout_is_unconfirmed_unless_the_call_cannot_have_posted() -> None:
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, body=requests.exceptions.ReadTimeout("read timed out"))
        session = requests.Session()
        with pytest.raises(OutcomeUnknown, match=r"^no answer to the post to P \(ReadTimeout\); it may have been made$"):
            send_request(session, "POST", URL, "post to P", timeout=5, may_have_posted=True)
        with pytest.raises(PostNotSent) as raised:
            send_request(session, "POST", URL, "list P's posts", timeout=5, may_have_posted=False)
    assert type(raised.value) is PostNotSent
    assert str(raised.value) == "no answer to the list P's posts (ReadTimeout); it may have been made"


def test_a_refused_connection_is_no_connection_either_way() -> None:
    exc = requests.exceptions.ConnectTimeout("connect timed out")
    for may_have_posted in (True, False):
        failure = network_failure(exc, "post to P", may_have_posted=may_have_posted)
        assert type(failure) is NoConnection
        assert str(failure) == "could not post to P: no connection (ConnectTimeout)"


def test_json_or_none_and_the_default_wait() -> None:
    assert json_or_none(answer(200, {"id": "1"})) == {"id": "1"}
    assert json_or_none(answer(502, "<html>Bad gateway</html>")) is None
    assert retry_after_wait(answer(429, headers={"Retry-After": "7"}).headers, 1000.0) == 7.0
    assert retry_after_wait(answer(429).headers, 1000.0) == DEFAULT_RATE_LIMIT_WAIT
    assert retry_after_wait(answer(429).headers, 1000.0, default=30.0) == 30.0


def graph(response: requests.Response, *, posting: bool = True) -> dict[str, object]:
    return graph_answer(response, "P", "post to P", posting=posting, clock=lambda: 1000.0,
                        rate_limit_wait=lambda got, now: 5.0, duplicate_code=506)


def test_graph_answer_gives_the_body_or_raises_what_the_error_means() -> None:
    assert graph(answer(200, {"id": "1_2"})) == {"id": "1_2"}
    with pytest.raises(RateLimited) as limited:
        graph(answer(400, {"error": {"message": "Too many calls", "code": 613}}))
    assert str(limited.value) == "P answered 400: Too many calls (code 613)"
    assert limited.value.reset_at == 1005.0
    with pytest.raises(DuplicatePost, match=r"^P answered 400: Duplicate status message \(code 506\)$"):
        graph(answer(400, {"error": {"message": "Duplicate status message", "code": 506}}))
    with pytest.raises(PostNotSent, match=r"^could not post to P: P answered 400: Duplicate status message"):
        graph(answer(400, {"error": {"message": "Duplicate status message", "code": 506}}), posting=False)
    with pytest.raises(OutcomeUnknown, match=r"^could not post to P: P answered 500: Internal Server Error; "
                                             r"the post may exist$"):
        graph(answer(500, "not json"))
    with pytest.raises(PostNotSent, match=r"^could not post to P: P answered 200: bad \(code 1\)$"):
        graph(answer(200, {"error": {"message": "bad", "code": 1}}))
    with pytest.raises(PostNotSent, match=r"^could not post to P: P answered 400: Bad Request$"):
        graph(answer(400, {"error": "not an object"}))
