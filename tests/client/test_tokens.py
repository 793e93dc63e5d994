from __future__ import annotations

from throttle_lab import estimate_request_tokens
from throttle_lab.client.tokens import estimate_prompt_tokens, estimate_text_tokens, request_body


def test_text_tokens_are_a_quarter_of_the_characters_rounded_up() -> None:
    assert [estimate_text_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_prompt_tokens_count_messages_names_and_parts() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},  # 4 + 4
        {"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]},
    ]
    assert estimate_prompt_tokens(messages) == 3 + (4 + 4) + (4 + 1 + 1 + 85)
    assert estimate_prompt_tokens([]) == 3
    assert estimate_prompt_tokens(["junk"]) == 3  # type: ignore[list-item]


def test_request_tokens_add_the_reply_budget() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 40}]}
    assert estimate_request_tokens({**body, "max_tokens": 50}) == 17 + 50
    assert estimate_request_tokens({**body, "max_completion_tokens": 20, "max_tokens": 50}) == 17 + 20
    assert estimate_request_tokens(body, default_max_tokens=7) == 17 + 7
    assert estimate_request_tokens({"messages": "nope", "max_tokens": True}) == 3 + 100


def test_request_body_parsing_is_forgiving() -> None:
    assert request_body(b'{"a": 1}') == {"a": 1}
    assert request_body(b"[1]") is None
    assert request_body(b"\xff") is None
    assert request_body(b"not json") is None


def test_client_estimates_match_the_mock_servers_count() -> None:
    import random

    from mock_server.tokens import prompt_tokens as server_prompt_tokens

    rng = random.Random(5)
    for _ in range(200):
        messages = [
            {"role": rng.choice(["user", "system"]), "content": "x" * rng.randint(0, 300)}
            for _ in range(rng.randint(1, 4))
        ]
        assert estimate_prompt_tokens(messages) == server_prompt_tokens(messages)
