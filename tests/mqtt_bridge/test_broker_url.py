"""The listener parses its broker URL once, into the same BrokerAddress the simulator uses."""

import pytest

from apps.mqtt_bridge.broker import BrokerAddress
from apps.mqtt_bridge.listener import Options


def test_the_url_is_parsed_once_with_its_defaults_and_unquoted_credentials():
    options = Options(url="mqtts://plant%40line:p%3Ass@broker.example", client_id="listener-1")
    assert options.broker == BrokerAddress(
        host="broker.example", port=8883, tls=True, username="plant@line", password="p:ss"
    )
    assert options.broker is options.broker
    assert options.broker.endpoint == "mqtts://broker.example:8883"  # no credentials in logs or alarms
    assert Options(url="mqtt://127.0.0.1", client_id="x").broker.port == 1883


def test_a_url_without_a_host_is_refused():
    with pytest.raises(ValueError, match="mqtt://host:port"):
        assert Options(url="http://broker.example", client_id="x").broker is None
