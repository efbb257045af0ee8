"""The search keys a customer import works out per row give what the plain definitions
give: the CJK grams of a name (cti.store.customers.name_grams, a regex over runs of
CJK characters) against a loop over its characters with is_cjk; the keys of a name,
company and addresses (search_keys_of) against each part folded and joined."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.store import customers
from cti.store.customers import (
    fold,
    fold_unicode,
    is_cjk,
    name_grams,
    search_keys_cached,
    search_keys_of,
)

pytestmark = pytest.mark.customers

#: Characters at and around each edge of is_cjk's ranges, and some plain ones.
EDGES = [chr(c) for b in (0x2E80, 0x9FFF, 0xAC00, 0xD7AF, 0xF900, 0xFAFF, 0x20000, 0x3FFFF)
         for c in (b - 1, b, b + 1)] + list("ab é王伟欧阳-·　")  # fmt: skip


def grams_by_loop(key: str) -> set[str]:
    grams: set[str] = set()
    previous = ""
    for ch in key:
        if is_cjk(ch):
            grams.add(ch)
            if previous:
                grams.add(previous + ch)
            previous = ch
        else:
            previous = ""
    return grams


@given(st.text(st.sampled_from(EDGES) | st.characters(exclude_categories=["Cs"]), max_size=12))
def test_name_grams_are_the_loops(key: str) -> None:
    assert name_grams(key) == grams_by_loop(key)


def test_name_grams_of_edges() -> None:
    assert name_grams("\u2e7f\u2e80\u9fff\ua000") == {"\u2e80", "\u9fff", "\u2e80\u9fff"}
    assert name_grams("\U0001ffff\U00020000\U0003ffff\U00040000") == {
        "\U00020000", "\U0003ffff", "\U00020000\U0003ffff"
    }  # fmt: skip


TEXT = st.text(st.sampled_from(EDGES) | st.sampled_from(list("  \tÉé司马")), max_size=8)


@given(TEXT, TEXT, st.lists(TEXT, max_size=3))
def test_search_keys_are_each_part_folded_and_joined(
    name: str, company: str, emails: list[str]
) -> None:
    parts = [(name, fold(name)), (company, fold(company)), *((e, fold(e)) for e in emails)]
    grams = name_grams(fold(name)) | name_grams(fold(company))
    text = "\n".join(key for part, key in parts if part)
    name_key, search_text, gram_text = search_keys_of(name, company, emails)
    assert (name_key, search_text) == (fold(name), text)
    assert set(gram_text.split()) == grams
    assert " ".join(gram_text.split()) == gram_text  # one space between two grams


KEY_CACHE: dict[str, tuple[str, str]] = {}  # kept across examples, as an import keeps it


@given(TEXT, TEXT, st.lists(TEXT, max_size=3))
def test_search_keys_cached_are_search_keys_of(name: str, company: str, emails: list[str]) -> None:
    cached = search_keys_cached(name, company, emails, KEY_CACHE)
    assert cached == search_keys_of(name, company, emails)
    assert search_keys_cached(name, company, emails, KEY_CACHE) == cached  # from the cache


def test_a_full_key_cache_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customers, "KEY_CACHE_SIZE", 2)
    cache: dict[str, tuple[str, str]] = {}
    for name in ("王伟", "José", "欧阳雨桐", "王伟"):
        assert search_keys_cached(name, "", [], cache) == search_keys_of(name, "", [])
        assert len(cache) <= 2
    assert cache == {
        "欧阳雨桐": ("欧阳雨桐", "欧 阳 雨 桐 欧阳 阳雨 雨桐"),
        "王伟": ("王伟", "王 伟 王伟"),
    }


def test_han_characters_fold_to_themselves() -> None:
    """fold's shortcut for a text of Han characters alone: each is its own key."""
    han = [chr(c) for c in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000))]
    assert [ch for ch in han if fold_unicode(ch) != ch] == []
    assert fold_unicode("".join(han)) == "".join(han)


@given(st.text(st.sampled_from([*EDGES, "\u33ff", "\u3400", "\u4dbf", "\u4dc0", "\u4e00"])))
def test_fold_is_the_unicode_tables(text: str) -> None:
    assert fold(text) == fold_unicode(text)
