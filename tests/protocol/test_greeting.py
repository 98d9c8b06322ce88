"""The hello rule (SPEC §9.2): hello first, once, with overlapping versions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import Reason, RemoteProtocolError
from protocol.greeting import MAX_ERROR_DETAIL_BYTES, Greeting, error_message
from protocol.wire import ErrorMessage, Hello, Message, Prune, Push, Sync

OTHERS: list[Message] = [Prune(), Sync(payload=None), Push(envelopes=(b"x",))]


def test_hello_then_anything() -> None:
    greeting = Greeting()
    hello = Hello(capabilities=("push",))
    assert greeting.receive(hello) is hello
    assert greeting.version == 1
    for message in OTHERS:
        assert greeting.receive(message) is None


@pytest.mark.parametrize("first", OTHERS, ids=lambda m: type(m).__name__)
def test_a_message_before_hello_is_refused(first: Message) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Greeting().receive(first)
    assert info.value.reason is Reason.UNEXPECTED_MESSAGE


def test_a_second_hello_is_refused() -> None:
    greeting = Greeting()
    greeting.receive(Hello())
    with pytest.raises(RemoteProtocolError) as info:
        greeting.receive(Hello())
    assert info.value.reason is Reason.UNEXPECTED_MESSAGE


@pytest.mark.parametrize(("low", "high"), [(2, 2), (2, 9)])
def test_versions_that_do_not_overlap_are_refused(low: int, high: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Greeting().receive(Hello(min_version=low, max_version=high))
    assert info.value.reason is Reason.UNKNOWN_VERSION


def test_the_highest_common_version_is_chosen() -> None:
    greeting = Greeting(min_version=1, max_version=3)
    greeting.receive(Hello(min_version=2, max_version=5))
    assert greeting.version == 3


@given(
    ours=st.tuples(st.integers(1, 20), st.integers(0, 5)),
    theirs=st.tuples(st.integers(1, 20), st.integers(0, 5)),
)
def test_a_version_is_agreed_exactly_when_the_ranges_overlap(
    ours: tuple[int, int], theirs: tuple[int, int]
) -> None:
    (a, da), (b, db) = ours, theirs
    greeting = Greeting(min_version=a, max_version=a + da)
    hello = Hello(min_version=b, max_version=b + db)
    if max(a, b) <= min(a + da, b + db):
        greeting.receive(hello)
        assert greeting.version == min(a + da, b + db)
    else:
        with pytest.raises(RemoteProtocolError):
            greeting.receive(hello)


@given(st.text(max_size=400))
def test_any_error_text_makes_a_valid_error_message(text: str) -> None:
    message = error_message(RemoteProtocolError(Reason.BAD_FIELD, text))
    assert isinstance(message, ErrorMessage)
    assert message.code == "bad_field"
    assert len(message.detail) <= MAX_ERROR_DETAIL_BYTES
