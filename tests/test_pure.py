"""Pure logic, tested without Redis or sockets: frames, cursors, expiry, moderation, enrich."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from feed.frames import entry_payload, ws_text_frame
from rules import cursor
from rules.enrich import Dropped, Enriched, enrich
from rules.expiry import expires_at
from rules.moderation import Policy, check_post
from rules.reach import shown_reach
from schemas.common import PostId, ShopId
from schemas.feed import FeedEntry
from schemas.hours import LocalTime, ShopHours
from schemas.media import MediaId
from schemas.posts import FlashOfferIn, NewArrivalIn, OpeningChangeIn, RawPost
from schemas.shops import ShopRecord

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 200_000])
def test_ws_text_frame_parses_as_one_unmasked_text_frame(size: int) -> None:
    payload = b"x" * size
    reader = StreamReader()
    reader.feed_data(ws_text_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the whole frame was fed
        raise AssertionError("frame incomplete")
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_entry_payload_is_the_contract_frame() -> None:
    post = msgspec.Raw(b'{"id":"p_x","title":"t"}')
    frame = json.loads(entry_payload(FeedEntry(type="post", id="p_x", post=post), "5-1") or b"")
    assert frame == {"type": "post", "post": {"id": "p_x", "title": "t"}, "cursor": "5-1"}
    gone = json.loads(entry_payload(FeedEntry(type="expired", id="p_x"), "6-0") or b"")
    assert gone == {"type": "expired", "id": "p_x", "cursor": "6-0"}
    assert entry_payload(FeedEntry(type="post", id="p_x"), "7-0") is None


@pytest.mark.parametrize(("value", "last", "oldest", "expected"), [
    ("5-0", "9-0", "0-0", cursor.Resume.REPLAY),
    ("9-0", "9-0", "0-0", cursor.Resume.REPLAY),  # up to date: nothing to replay
    ("3-0", "9-0", "4-0", cursor.Resume.RESET),  # entries after it were trimmed
    ("4-0", "9-0", "4-0", cursor.Resume.REPLAY),
    ("10-0", "9-0", "0-0", cursor.Resume.RESET),  # from a stream that no longer exists
    ("garbage", "9-0", "0-0", cursor.Resume.RESET),
    ("0-0", "0-0", "0-0", cursor.Resume.REPLAY),
])
def test_cursor_judgement(value: str, last: str, oldest: str, expected: cursor.Resume) -> None:
    assert cursor.judge(value, last_id=last, oldest_kept=oldest) is expected


def test_cursor_order_is_numeric_not_lexical() -> None:
    assert cursor.key("10-0") > cursor.key("9-5")
    assert cursor.key("9-10") > cursor.key("9-9")


def test_expiry_by_kind() -> None:
    ends = NOW + timedelta(hours=2)
    assert expires_at(FlashOfferIn(title="x", ends_at=ends), NOW, PARIS) == ends
    until = NOW + timedelta(hours=5)
    assert expires_at(OpeningChangeIn(title="x", until=until), NOW, PARIS) == until
    # End of the local day: midnight in Paris is 22:00 UTC in summer...
    assert expires_at(OpeningChangeIn(title="x"), NOW, PARIS) == datetime(2026, 6, 15, 22,
                                                                         tzinfo=UTC)
    # ...and 23:00 UTC in winter.
    winter = datetime(2026, 1, 15, 10, tzinfo=UTC)
    assert expires_at(NewArrivalIn(title="x"), winter, PARIS) == datetime(2026, 1, 15, 23,
                                                                          tzinfo=UTC)
    # A late-evening arrival stays at least three hours.
    late = datetime(2026, 6, 15, 21, 30, tzinfo=UTC)  # 23:30 in Paris
    assert expires_at(NewArrivalIn(title="x"), late, PARIS) == late + timedelta(hours=3)


def test_end_of_day_on_dst_change() -> None:
    # 2026-03-29: clocks go forward in Paris; the day is 23 hours long.
    morning = datetime(2026, 3, 29, 8, tzinfo=UTC)
    assert expires_at(OpeningChangeIn(title="x"), morning, PARIS) == datetime(2026, 3, 29, 22,
                                                                              tzinfo=UTC)


@pytest.mark.parametrize(("post", "code"), [
    (NewArrivalIn(title="Fraises <script>alert(1)</script>"), "markup_not_allowed"),
    (NewArrivalIn(title="x", text='<img src=x onerror="boom">'), "markup_not_allowed"),
    (NewArrivalIn(title="x", text="javascript:alert(1)"), "markup_not_allowed"),
    (NewArrivalIn(title="x", text="www.a.example and https://b.example"), "too_many_links"),
    (NewArrivalIn(title="x\x07"), "control_characters"),
    (NewArrivalIn(title="  "), "invalid_title"),
    (NewArrivalIn(title="x", tags=["<svg onload=x>"]), "markup_not_allowed"),
    (FlashOfferIn(title="x", ends_at=NOW - timedelta(seconds=1)), "ends_at_in_past"),
    (FlashOfferIn(title="x", ends_at=NOW + timedelta(hours=24, seconds=1)), "ends_at_too_far"),
    (OpeningChangeIn(title="x", until=NOW - timedelta(minutes=1)), "until_in_past"),
])
def test_moderation_rejects(post: NewArrivalIn, code: str) -> None:
    rejection = check_post(post, NOW, Policy())
    assert rejection is not None and rejection.code == code


def test_moderation_accepts_ordinary_posts_and_applies_word_list() -> None:
    fine = NewArrivalIn(title="Fraises de Plougastel -30 % < 5 €",
                        text="Voir https://ferme.example pour le producteur.")
    assert check_post(fine, NOW, Policy()) is None
    assert check_post(FlashOfferIn(title="x", ends_at=NOW + timedelta(hours=24)), NOW,
                      Policy()) is None
    banned = check_post(NewArrivalIn(title="Promo casino"), NOW,
                        Policy(banned_words=frozenset({"casino"})))
    assert banned is not None and banned.code == "content_rejected"


def _shop(**changes: object) -> ShopRecord:
    base = ShopRecord(id="primeur-abc123", name="Primeur", category="primeur", lat=44.8,
                      lon=-0.57, token_hash="h", created_at=NOW)
    return msgspec.structs.replace(base, **changes)


def test_enrich_joins_shop_and_sets_expiry() -> None:
    raw = RawPost(id="p_abcdefghijklmnop", shop_id="primeur-abc123", accepted_at=NOW,
                  body=FlashOfferIn(title=" -30 % ", ends_at=NOW + timedelta(hours=1),
                                    discount_pct=30))
    outcome = enrich(raw, _shop(), now=NOW, tz=PARIS, policy=Policy(), local_km=100.0)
    assert isinstance(outcome, Enriched)
    body = json.loads(outcome.json)
    assert body["kind"] == "flash_offer" and outcome.kind == "flash_offer"
    assert body["title"] == "-30 %"
    assert body["shop"]["name"] == "Primeur"
    assert "token_hash" not in body["shop"]
    assert body["expires_at"] == body["ends_at"] == "2026-06-15T11:00:00Z"
    assert (outcome.lat, outcome.lon) == (44.8, -0.57)


def test_every_post_names_its_shop_s_time_zone() -> None:
    # A page on a device set to another zone writes "until 18:00" in the shop's time: the
    # shop's hours' zone, else the deployment's (a shopkeeper's own opening post had none).
    raw = RawPost(id="p_abcdefghijklmnop", shop_id="primeur-abc123", accepted_at=NOW,
                  body=OpeningChangeIn(title="Ouvert tard", status="open_late",
                                       until=NOW + timedelta(hours=3)))
    without_hours = enrich(raw, _shop(), now=NOW, tz=PARIS, policy=Policy(), local_km=100.0)
    assert isinstance(without_hours, Enriched)
    assert json.loads(without_hours.json)["shop"]["timezone"] == "Europe/Paris"
    tokyo = ShopHours(timezone="Asia/Tokyo", weekly={})
    with_hours = enrich(raw, _shop(hours=tokyo), now=NOW, tz=PARIS, policy=Policy(),
                        local_km=100.0)
    assert isinstance(with_hours, Enriched)
    assert json.loads(with_hours.json)["shop"]["timezone"] == "Asia/Tokyo"


def test_enrich_drops_what_cannot_be_shown() -> None:
    raw = RawPost(id="p_abcdefghijklmnop", shop_id="primeur-abc123", accepted_at=NOW,
                  body=FlashOfferIn(title="x", ends_at=NOW + timedelta(minutes=5)))
    assert enrich(raw, None, now=NOW, tz=PARIS, policy=Policy(),
                  local_km=100.0) == Dropped("unknown_shop")
    assert enrich(raw, _shop(disabled=True), now=NOW, tz=PARIS,
                  policy=Policy(), local_km=100.0) == Dropped("unknown_shop")
    later = NOW + timedelta(minutes=10)  # the enricher was down past the offer's end
    assert enrich(raw, _shop(), now=later, tz=PARIS, policy=Policy(),
                  local_km=100.0) == Dropped("expired")


@pytest.mark.parametrize("forged", ["0-99999999999999999999", "18446744073709551616-0",
                                    "١-٠", "1-0\n", "1-", "-1"])
def test_forged_cursors_are_malformed_not_stream_ids(forged: str) -> None:
    """Cold try of issue 11: each reached Redis as a stream id it refuses (a traceback and
    close 1011) instead of being judged malformed (a reset and a snapshot)."""
    assert cursor.parse(forged) is None
    assert cursor.judge(forged, last_id="5-0", oldest_kept="0-0") is cursor.Resume.RESET


def test_the_largest_stream_id_is_a_cursor() -> None:
    assert cursor.parse("18446744073709551615-18446744073709551615") == (2**64 - 1, 2**64 - 1)


def test_reach_is_told_per_field_from_5_and_fewer_than_5_below() -> None:
    hidden = {"phone": None, "screen": None, "fewer_than": 5}

    def as_json(reach: object) -> object:
        return json.loads(msgspec.json.encode(reach))
    assert as_json(shown_reach(0, 0)) == as_json(shown_reach(1, 0)) == hidden
    assert as_json(shown_reach(4, 4)) == hidden
    assert as_json(shown_reach(5, 0)) == {"phone": 5, "screen": None, "fewer_than": 5}
    # Five screens of a shop's own do not make the phones exact.
    assert as_json(shown_reach(1, 5)) == {"phone": None, "screen": 5, "fewer_than": 5}
    assert as_json(shown_reach(12, 5)) == {"phone": 12, "screen": 5}


def test_id_and_time_patterns_refuse_a_trailing_newline() -> None:
    # Python's `$` matches before a final newline: "p_...\n" was a valid post id.
    for kind, valid in ((ShopId, "fromagerie-1"), (PostId, "p_" + "a" * 16),
                        (MediaId, "m_" + "0" * 32), (LocalTime, "08:30")):
        assert msgspec.json.decode(msgspec.json.encode(valid), type=kind) == valid
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode(valid + "\n"), type=kind)
