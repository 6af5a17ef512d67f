from tests.support import Hub


def test_buy_sms_finish(hub: Hub) -> None:
    seller = hub.stocked(count=2)
    key = hub.customer("10.00")
    activation_id, phone = hub.buy(key)
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_WAIT_CODE"
    assert hub.push_sms(seller, phone, "Your code: 48213").json() == {"status": "SUCCESS"}
    assert hub.say(key, "getStatus", id=activation_id) == "STATUS_OK:48213"
    assert hub.say(key, "setStatus", id=activation_id, status=6) == "ACCESS_ACTIVATION"
    assert hub.say(key, "getBalance") == "ACCESS_BALANCE:9.50"
