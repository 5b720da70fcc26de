from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditledger.ledger import canonical

AT = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)

# Text a ledger can hold: no NUL (jsonb refuses it; test_text_that_json_or_utf8_cannot_carry_is_refused).
texts = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts | st.decimals(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=8,
)


def reordered(value):
    """The same document with every mapping's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(item) for item in value]
    return value


def body(payload: dict) -> bytes:
    return canonical.entry_body(
        seq=7,
        at=AT,
        actor="user:3",
        action="violation.confirmed",
        subject_type="violation",
        subject_id="42",
        trader_uscc="91330106MA2K000001",
        payload=payload,
    )


def test_the_same_payload_with_keys_in_another_order_hashes_the_same():
    one = {"fine": Decimal("100.00"), "by": {"user": 3, "name": "王芳"}, "codes": ["a", "b"]}
    other = {"codes": ["a", "b"], "by": {"name": "王芳", "user": 3}, "fine": Decimal("100.00")}
    assert body(one) == body(other)
    assert canonical.chain_hash(canonical.GENESIS_HASH, body(one)) == canonical.chain_hash(
        canonical.GENESIS_HASH, body(other)
    )


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(texts, json_values, max_size=6))
def test_key_order_never_changes_the_bytes(payload):
    assert body(payload) == body(reordered(payload))


def test_the_body_is_compact_sorted_utf8_with_fixed_microseconds():
    data = body({"b": 1, "a": "商品"})
    assert data.startswith(
        b'{"action":"violation.confirmed","actor":"user:3","at":"2026-03-01T08:30:00.000000Z"'
    )
    assert b" " not in data
    assert "商品".encode() in data


def test_times_are_written_in_utc():
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert canonical.format_time(dt.datetime(2026, 3, 1, 16, 30, tzinfo=shanghai)) == (
        "2026-03-01T08:30:00.000000Z"
    )


@pytest.mark.parametrize("payload", [{"fine": 1.5}, {"items": [1, 2.0]}, {"nested": {"ratio": 0.1}}])
def test_it_refuses_floats(payload):
    with pytest.raises(canonical.CanonicalError, match="floats"):
        body(payload)


def test_it_refuses_naive_times():
    with pytest.raises(canonical.CanonicalError, match="timezone"):
        body({"when": dt.datetime(2026, 3, 1, 8, 30)})


def test_the_hash_depends_on_the_previous_hash():
    assert canonical.chain_hash("a" * 64, b"{}") != canonical.chain_hash("b" * 64, b"{}")


@pytest.mark.parametrize("text", ["a\x00b", "lone \ud800 surrogate"])
def test_text_that_json_or_utf8_cannot_carry_is_refused(text):
    with pytest.raises(canonical.CanonicalError):
        canonical.dumps({"note": text})


payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    seq=st.integers(min_value=1, max_value=10**12),
    actor=st.text(max_size=20),
    action=st.text(max_size=20),
    subject_id=st.text(max_size=10),
    trader=st.text(max_size=18),
    payload=st.dictionaries(st.text(max_size=8), payloads, max_size=4),
)
def test_the_body_built_before_the_lock_is_the_canonical_body(
    seq, actor, action, subject_id, trader, payload
):
    fields = {
        "at": dt.datetime(2026, 11, 28, 14, 0, 0, 123, tzinfo=dt.UTC),
        "actor": actor,
        "action": action,
        "subject_type": "trader",
        "subject_id": subject_id,
        "trader_uscc": trader,
        "payload": payload,
    }
    try:
        reference = canonical.entry_body(seq=seq, **fields)
    except canonical.CanonicalError:
        return  # refused either way
    assert canonical.entry_parts(**fields).body(seq) == reference


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500)
@given(json_values)
def test_the_fast_encoder_writes_the_reference_bytes(value):
    try:
        normalised = canonical.normalise(value)
    except canonical.CanonicalError:
        return  # refused text (a lone surrogate, a NUL) never reaches the encoder
    assert canonical._encode(normalised) == canonical._reference_encode(normalised)
