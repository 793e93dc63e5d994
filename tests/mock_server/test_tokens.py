"""Token estimates and the seeded completion text."""

from __future__ import annotations

import pytest

from mock_server.dice import Dice
from mock_server.tokens import TextSource, estimate_tokens, prompt_tokens


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_estimate_is_ceil_of_chars_over_four(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_prompt_tokens_formula() -> None:
    # 3 per request + per message (4 + content + name)
    assert prompt_tokens([{"role": "user", "content": "hi"}]) == 3 + 4 + 1
    assert prompt_tokens([{"role": "system", "content": "x" * 40}, {"role": "user", "content": "y" * 9}]) == (
        3 + (4 + 10) + (4 + 3)
    )
    assert prompt_tokens([{"role": "user", "content": "hi", "name": "bob"}]) == 3 + 4 + 1 + 1
    parts = [{"type": "text", "text": "abcdefgh"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert prompt_tokens([{"role": "user", "content": parts}]) == 3 + 4 + 2 + 85
    assert prompt_tokens([{"role": "assistant", "content": None}]) == 3 + 4


@pytest.mark.parametrize("target", [1, 2, 3, 7, 16, 100, 1000])
def test_completion_fits_target_and_is_deterministic(target: int) -> None:
    source = TextSource(seed=3, min_chars=4 * 1000)
    for i in range(50):
        text = source.completion(target, Dice(7, i))
        assert text == source.completion(target, Dice(7, i))
        assert 1 <= estimate_tokens(text) <= target
        assert text.endswith(".") and text[0].isupper()
        if target >= 16:
            assert estimate_tokens(text) >= target - 4  # cut at a word boundary, close to the target


def test_seed_changes_the_text() -> None:
    a = TextSource(seed=1, min_chars=400).completion(50, Dice(0, 0))
    b = TextSource(seed=2, min_chars=400).completion(50, Dice(0, 0))
    assert a != b
