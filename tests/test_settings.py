"""Settings: every variable is read in one place and decoded to its field's type."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from rules.errors import ConfigError
from runtime.settings import ENVIRONMENT, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("schemas", "rules", "runtime", "storage", "services", "feed", "workers", "web",
           "streetfeed")
# Not settings: a library's own variable, and the handshake between `streetfeed up` and its
# children (runtime/processes.py), popped before anything else reads the environment.
NOT_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR", "STREETFEED_PARENT_PID"}


def _variables_named_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    exported = {id(element) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
                for element in ast.walk(node.value)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in exported
            and re.fullmatch(r"(STREETFEED|REDIS|ARQ)_[A-Z_]+", node.value)}


def test_every_variable_is_read_through_settings() -> None:
    named: dict[str, set[str]] = {}
    for package in PRODUCT:
        for path in (ROOT / package).glob("*.py"):
            for name in _variables_named_in(path):
                named.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    outside = {name: files for name, files in named.items()
               if name not in NOT_SETTINGS and files != {"runtime/settings.py"}}
    assert not outside, f"variables named outside runtime/settings.py: {outside}"
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(ENVIRONMENT.values()) <= fields


@pytest.mark.parametrize(("name", "value", "said"), [
    ("STREETFEED_MAX_CONNECTIONS", "lots", "expected an integer, got 'lots'"),
    ("STREETFEED_DEMO_INTERVAL_S", "fast", "expected a number, got 'fast'"),
    ("STREETFEED_GATEWAY_INDEX", "maybe", "expected a boolean"),
    ("STREETFEED_LOG_FORMAT", "xml", "expected one of json, text, got 'xml'"),
    ("STREETFEED_BANNED_WORDS_FILE", "/no/such/file", "cannot read /no/such/file"),
    ("STREETFEED_MAX_CONNECTIONS", "0", "expected at least 1, got 0"),
    ("STREETFEED_SHOP_POSTS_PER_MINUTE", "-5", "expected at least 1, got -5"),
    ("STREETFEED_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("STREETFEED_TIMEZONE", "localtime", "unknown time zone 'localtime'"),
    # A live enricher reads every 2 s: a shorter stall would call it stuck between reads.
    ("STREETFEED_ENRICHER_STALL_S", "3", "expected more than twice the enricher's read "
                                         "block (2 s), got 3.0"),
])
def test_a_bad_value_names_its_variable(name: str, value: str, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name) + r"\)?: " + re.escape(said)):
        load_settings({name: value})


def test_values_are_decoded_to_their_types(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("casino\nloterie\n")
    settings = load_settings({
        "STREETFEED_REGIONS": "west:44,-1,45,0;east:44,0,45,1",
        "STREETFEED_MAX_CONNECTIONS": "10", "STREETFEED_GATEWAY_INDEX": "off",
        "STREETFEED_DEMO_INTERVAL_S": "0.5", "STREETFEED_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
        "STREETFEED_LOG_FORMAT": "text", "STREETFEED_REDIS_SERVER": "/opt/valkey-server",
        "STREETFEED_BANNED_WORDS_FILE": str(words), "STREETFEED_DATA_DIR": str(tmp_path),
        "STREETFEED_REPLAY_MAX": "",  # empty: unset, the default stays
    })
    assert (settings.region, settings.region_names) == ("west", ["west", "east"])
    assert settings.max_connections == 10 and settings.gateway_use_index is False
    assert settings.demo_interval_s == 0.5
    assert settings.trusted_proxies == ("10.0.0.0/8", "::1")
    assert settings.log_format == "text" and settings.redis_server == "/opt/valkey-server"
    assert settings.moderation_banned_words == ("casino", "loterie")
    assert settings.data_dir == tmp_path
    assert settings.replay_max == Settings().replay_max
    # "" means something for these two: no map tiles, no trusted proxy.
    bare = load_settings({"STREETFEED_TILE_URL": "", "STREETFEED_TRUSTED_PROXIES": ""})
    assert bare.tile_url == "" and bare.trusted_proxies == ()


def test_numbers_and_choices_are_read_as_an_env_file_writes_them() -> None:
    """Cold try: ' 100 ', '100\\n' and '+100' started the service before settings were
    decoded from one table, and were refused after it; so was 'JSON'."""
    for raw in (" 100 ", "100\n", "+100", "1_00"):
        assert load_settings({"STREETFEED_MAX_CONNECTIONS": raw}).max_connections == 100
    assert load_settings({"STREETFEED_DEMO_INTERVAL_S": " 0.5\n"}).demo_interval_s == 0.5
    assert load_settings({"STREETFEED_LOG_FORMAT": "JSON "}).log_format == "json"
    with pytest.raises(ConfigError, match="expected an integer, got '1e3'"):
        load_settings({"STREETFEED_MAX_CONNECTIONS": "1e3"})


def test_push_settings_are_decoded_and_the_vapid_key_never_shown(tmp_path: Path) -> None:
    key = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
    settings = load_settings({
        "STREETFEED_VAPID_PRIVATE_KEY": key, "STREETFEED_VAPID_SUBJECT": "mailto:ops@example.org",
        "STREETFEED_PUSH_ALLOWED_HOSTS": "127.0.0.1:8123, push.internal:443, [::1]:9000",
        "STREETFEED_PUSH_SUBSCRIPTION_DAYS": "30"})
    assert settings.vapid_private_key is not None
    assert settings.vapid_private_key.reveal() == key
    assert key not in repr(settings) and key not in str(settings.vapid_private_key)
    assert settings.push_subject == "mailto:ops@example.org"
    assert settings.push_allowed_hosts == ("127.0.0.1:8123", "push.internal:443", "[::1]:9000")
    assert settings.push_subscription_ttl_s == 30 * 86400
    # Without a subject: the public https address, else a contact that reaches nobody.
    assert load_settings({"STREETFEED_PUBLIC_URL": "https://rue.example.org"}
                         ).push_subject == "https://rue.example.org"
    assert load_settings({}).push_subject.startswith("mailto:")


@pytest.mark.parametrize(("name", "value", "said"), [
    ("STREETFEED_PUSH_ALLOWED_HOSTS", "127.0.0.1", "expected host:port, got '127.0.0.1'"),
    ("STREETFEED_PUSH_ALLOWED_HOSTS", "a:99999", "expected host:port, got 'a:99999'"),
    ("STREETFEED_VAPID_SUBJECT", "ops", "expected mailto:someone@example.org"),
    ("STREETFEED_PUSH_SUBSCRIPTION_DAYS", "0", "expected at least 1, got 0"),
])
def test_a_bad_push_setting_names_its_variable(name: str, value: str, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name) + r"\)?: " + re.escape(said)):
        load_settings({name: value})


def test_children_of_up_get_its_data_dir(tmp_path: Path) -> None:
    """`up --data-dir D` started its enricher, scheduler and pusher with no data dir: they
    used ./var (the scheduler swept another media store; a pusher would sign with another
    VAPID key than the one pages subscribed with)."""
    relative = Path("some") / "dir"
    env = Settings(data_dir=relative).child_environment()
    child = load_settings(env)
    assert child.data_dir == relative.resolve() and child.data_dir.is_absolute()
