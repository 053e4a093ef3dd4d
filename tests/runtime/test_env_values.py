"""The environment parsers take what an operator means and name what they do not: ASCII digits
only (``int()`` also takes ``١٢٣`` and ``1_000``), ids that Discord can have, a variable
that takes one id says so, and a URL without its scheme, host or a real port is named without
being repeated."""

from __future__ import annotations

import pytest

from runtime.env import MAX_ID, BadSetting, env_float, env_ids, env_int, env_one_id, env_url


@pytest.mark.parametrize("raw", ["١٢٣", "1_000", "٣", "１２"])
def test_numbers_take_ascii_digits_only(raw: str) -> None:
    with pytest.raises(BadSetting, match="X must be a whole number"):
        env_int({"X": raw}, "X", 1, 0, 10**9)
    with pytest.raises(BadSetting, match="X_S must be a number of seconds"):
        env_float({"X_S": raw}, "X_S", 1.0, 0.0, 10.0**9)
    with pytest.raises(BadSetting, match="X_GB must be a number of GB"):  # the unit its name says
        env_float({"X_GB": raw}, "X_GB", 1.0, 0.0, 10.0**9)
    assert env_int({"X": " 12 "}, "X", 1, 0, 100) == 12 and env_float({"X": "1.5"}, "X", 1.0, 0.0, 9.0) == 1.5


@pytest.mark.parametrize("raw", ["0", str(MAX_ID + 1), "١٢٣", "-5", "general", "1e9"])
def test_an_id_must_be_one_discord_can_have(raw: str) -> None:
    with pytest.raises(BadSetting, match="comma-separated list of Discord ids"):
        env_ids({"IDS": f"123,{raw}"}, "IDS")
    with pytest.raises(BadSetting, match="ONE must be one Discord id") as one:
        env_one_id({"ONE": raw}, "ONE")
    assert "list" not in str(one.value)
    assert env_one_id({"ONE": str(MAX_ID)}, "ONE") == MAX_ID and env_ids({"IDS": "1, 2"}, "IDS") == {1, 2}


@pytest.mark.parametrize("raw", ["127.0.0.1:9/ws", "https://u:Secret@host/ws", "ws://", "ws://host:0/ws",
                                 "ws://host:99999/ws", "ws://host:port/ws", "ws://[::1/ws"])
def test_a_url_must_have_its_scheme_a_host_and_a_real_port(raw: str) -> None:
    with pytest.raises(BadSetting, match=r"GW must be a URL beginning ws:// or wss://, with a host") as bad:
        env_url({"GW": raw}, "GW", None, ("ws", "wss"), "ws://127.0.0.1:8000/ws")
    assert "Secret" not in str(bad.value)
    assert env_url({"GW": " wss://gateway.example:443/ws "}, "GW", None, ("ws", "wss"), "") == "wss://gateway.example:443/ws"
    assert env_url({}, "GW", None, ("ws", "wss"), "") is None
