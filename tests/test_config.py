from pathlib import Path

import pytest

from kernel.config import KEYS, Config
from kernel.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_setting():
    text = README.read_text()
    missing = [key.env for key in KEYS.values() if f"`{key.env}`" not in text]
    assert missing == []


def test_defaults():
    config = Config.from_env({})
    assert config.db == "sqlite:///hostwatch.db"
    assert config.removal_confirmations == 2
    assert config.allow_private == ()
    assert config.nameservers == ()
    assert (config.log_level, config.progress) == ("WARNING", True)  # problems only


def test_nameservers_parse_host_port_lists():
    config = Config.from_env({"HOSTWATCH_NAMESERVERS": "127.0.0.1:5353, 127.0.0.2,[::1]:54"})
    assert config.nameservers == (("127.0.0.1", 5353), ("127.0.0.2", 53), ("::1", 54))


@pytest.mark.parametrize(("env", "value"), [
    ("HOSTWATCH_ALLOW_PRIVATE", "maybe"),
    ("HOSTWATCH_REMOVAL_CONFIRMATIONS", "0"),
    ("HOSTWATCH_TIMEOUT", "-1"),
    ("HOSTWATCH_TIMEOUT", "inf"),  # a fetch, and a shared run's batch, would never give up
    ("HOSTWATCH_TIMEOUT", "nan"),
    ("HOSTWATCH_BACKOFF_MAX_DELAY", "inf"),
    ("HOSTWATCH_NAMESERVERS", "127.0.0.1:99999"),
    ("HOSTWATCH_CONTROL_URLS", "ftp://control.example/"),
    ("HOSTWATCH_CONTROL_URLS", "https://ok.example/,not a url"),
    ("HOSTWATCH_SUSPECT_SHARE", "0"),
    ("HOSTWATCH_SUSPECT_NO_ADDRESS_SHARE", "1.5"),
    ("HOSTWATCH_SUSPECT_MIN_CASES", "0"),
    ("HOSTWATCH_LOG_LEVEL", "LOUD"),
])
def test_bad_values_name_the_variable(env, value):
    with pytest.raises(ConfigError, match=env):
        Config.from_env({env: value})


def test_control_urls_and_suspect_thresholds():
    config = Config.from_env({})
    assert (config.control_urls, config.suspect_share, config.suspect_min_cases,
            config.suspect_no_address_share) == ((), 0.5, 20, 0.9)
    urls = "https://a.example/ok, http://b.example:8080/x"
    assert Config.from_env({"HOSTWATCH_CONTROL_URLS": urls}).control_urls == (
        "https://a.example/ok", "http://b.example:8080/x")


def test_round_trip_through_the_environment():
    config = Config.from_env({"HOSTWATCH_NAMESERVERS": "127.0.0.1:5353",
                              "HOSTWATCH_CONTROL_URLS": "https://a.example/,https://b.example/",
                              "HOSTWATCH_ALLOW_PRIVATE": "1"}, timeout=3.5)
    assert Config.from_env(config.to_env()) == config


def test_allow_private_takes_a_switch_or_networks():
    assert Config.from_env({"HOSTWATCH_ALLOW_PRIVATE": "1"}).allow_private[0] == "127.0.0.0/8"
    config = Config.from_env({"HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8"})
    assert config.allow_private == ("127.0.0.0/8",)
    with pytest.raises(ConfigError, match="HOSTWATCH_ALLOW_PRIVATE"):
        Config.from_env({"HOSTWATCH_ALLOW_PRIVATE": "10.0.0.0/33"})


@pytest.mark.parametrize(("name", "value"), [
    ("timeout", "abc"), ("removal_confirmations", -1), ("removal_confirmations", "two"),
    ("nameservers", "127.0.0.1:99999"), ("pdq_threshold", 65), ("offline", "maybe"),
])
def test_an_override_in_code_is_checked_as_the_environment_is(name, value):
    with pytest.raises(ConfigError, match=rf"^{name}={value!r} \(as HOSTWATCH_"):
        Config.from_env({}, **{name: value})


def test_good_overrides_in_code_keep_their_values():
    config = Config.from_env({}, timeout=5, db="sqlite:///x.db", offline=True,
                             nameservers=(("127.0.0.1", 5353),), allow_private=("10.0.0.0/8",))
    assert (config.timeout, config.db, config.offline) == (5.0, "sqlite:///x.db", True)
    assert config.nameservers == (("127.0.0.1", 5353),)
    assert config.allow_private == ("10.0.0.0/8",)
    assert Config.from_env({}, removal_confirmations=3).debounce().confirmations == 3


def test_a_refused_queue_url_is_never_echoed_with_its_password():
    from kernel.errors import ConfigError

    for value in ("redis://:s3cret@queue.example/0", "mysql://hw:s3cret@db/hw?password=s3cret"):
        try:
            Config.from_env({"HOSTWATCH_QUEUE": value})
        except ConfigError as exc:
            assert "HOSTWATCH_QUEUE" in str(exc) and "s3cret" not in str(exc)
        else:
            raise AssertionError(f"{value} accepted")
