"""The transport rules of the customer API: methods, bodies, paths, parameter spelling."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.answers import JSON, word
from tests.api.answers import exact as _exact
from tests.support import Hub

PATH = "/stubs/handler_api.php"


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = f"----otphub{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"
    return body.encode(), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------- methods and bodies


def test_post_query_with_empty_octet_stream_body(hub: Hub) -> None:
    key = hub.customer("100.00")
    response = hub.http.post(
        PATH,
        params={"api_key": key, "action": "getBalance"},
        content=b"",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert _exact(response) == "ACCESS_BALANCE:100.00"


def test_post_query_with_empty_body_of_other_types(hub: Hub) -> None:
    key = hub.customer("100.00")
    for content_type in (None, "application/json", "text/plain", "application/xml"):
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = hub.http.post(
            PATH, params={"api_key": key, "action": "getBalance"}, content=b"", headers=headers
        )
        assert _exact(response) == "ACCESS_BALANCE:100.00", content_type


def test_post_form_urlencoded(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("100.00")
    response = hub.http.post(PATH, data={"api_key": key, "action": "getBalance"})
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    response = hub.http.post(
        PATH,
        content=f"api_key={key}&action=getNumber&service=tg&country=0".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert _exact(response).endswith(":79000000001")
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:99.50"


def test_post_multipart(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("100.00")
    body, content_type = multipart({"api_key": key, "action": "getBalance"})
    response = hub.http.post(PATH, content=body, headers={"Content-Type": content_type})
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    # httpx's own multipart encoding, with a file part next to the fields.
    response = hub.http.post(
        PATH,
        data={"api_key": key, "action": "getNumber", "service": "tg"},
        files={"attachment": ("a.txt", b"ignored", "text/plain")},
    )
    assert _exact(response).endswith(":79000000001")
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:99.50"


def test_post_merges_query_and_body(hub: Hub) -> None:
    hub.stocked(count=2, country=2, first_phone=77010000001)
    key = hub.customer("100.00")
    response = hub.http.post(PATH, params={"api_key": key}, data={"action": "getBalance"})
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    response = hub.http.post(
        PATH,
        params={"action": "getNumber", "country": "2"},
        data={"api_key": key, "service": "tg"},
    )
    assert _exact(response).endswith(":77010000001")
    body, content_type = multipart({"service": "tg", "country": "2"})
    response = hub.http.post(
        PATH,
        params={"api_key": key, "action": "getNumber"},
        content=body,
        headers={"Content-Type": content_type},
    )
    assert _exact(response).endswith(":77010000002")
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:99.00"


# ---------------------------------------------------------------- paths


def test_alias_path(hub: Hub) -> None:
    key = hub.customer("100.00")
    response = hub.http.get("/handler_api.php", params={"api_key": key, "action": "getBalance"})
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    response = hub.http.post("/handler_api.php", data={"api_key": key, "action": "getBalance"})
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    response = hub.http.post(
        "/handler_api.php",
        params={"api_key": key, "action": "getBalance"},
        content=b"",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert _exact(response) == "ACCESS_BALANCE:100.00"


def test_trailing_slash_is_never_redirected(hub: Hub) -> None:
    key = hub.customer("100.00")
    for path in ("/stubs/handler_api.php/", "/handler_api.php/"):
        get = hub.http.get(
            path, params={"api_key": key, "action": "getBalance"}, follow_redirects=False
        )
        post = hub.http.post(
            path, data={"api_key": key, "action": "getBalance"}, follow_redirects=False
        )
        for response in (get, post):
            assert not response.is_redirect, (path, response.status_code, response.headers)
            assert not 300 <= response.status_code < 400
            assert "location" not in response.headers
    # The handler itself answers plain http without redirecting.
    response = hub.http.get(
        PATH, params={"api_key": key, "action": "getBalance"}, follow_redirects=False
    )
    assert _exact(response) == "ACCESS_BALANCE:100.00"


def test_other_methods_and_paths_go_through_the_router(hub: Hub) -> None:
    """GET and POST on the handler take a shortcut past Starlette's router (see
    ``otphub.http.shortcut``); everything else must still be answered by the router."""
    key = hub.customer("100.00")
    params = {"api_key": key, "action": "getBalance"}
    for path in (PATH, "/handler_api.php"):
        assert _exact(hub.http.get(path, params=params)) == "ACCESS_BALANCE:100.00"
        assert _exact(hub.http.post(path, data=params)) == "ACCESS_BALANCE:100.00"
        assert hub.http.put(path, params=params).status_code == 405
        assert hub.http.delete(path, params=params).status_code == 405
        head = hub.http.head(path, params=params)
        assert head.status_code == 200 and head.content == b""
    assert hub.http.get("/stubs/handler_api.phpx", params=params).status_code == 404
    assert hub.http.get("/healthz").text == "OK"


# ---------------------------------------------------------------- parameters


def test_parameter_names_with_a_trailing_space(hub: Hub) -> None:
    hub.stocked(count=1)
    key = hub.customer("100.00")
    response = hub.http.get(f"{PATH}?api_key%20={key}&action%20=getBalance")
    assert _exact(response) == "ACCESS_BALANCE:100.00"
    response = hub.http.get(PATH, params={"api_key ": key, "action": "getNumber", "service ": "tg"})
    assert _exact(response).endswith(":79000000001")
    response = hub.http.post(PATH, data={"api_key ": key, "action ": "getBalance"})
    assert _exact(response) == "ACCESS_BALANCE:99.50"


def test_empty_values_are_absent(hub: Hub) -> None:
    hub.stocked(count=3)
    key = hub.customer("100.00")
    assert word(hub, "", "getBalance") == "NO_KEY"
    assert _exact(hub.http.get(f"{PATH}?api_key=&action=getBalance")) == "NO_KEY"
    assert word(hub, key, "") == "BAD_ACTION"
    assert word(hub, key, "getNumber", service="") == "BAD_SERVICE"
    # country= is country 0; the other empty filters are no filter at all.
    body = _exact(
        hub.http.get(
            f"{PATH}?api_key={key}&action=getNumber&service=tg&country=&operator="
            "&maxPrice=&max_price=&providerIds=&exceptProviderIds=&phoneException=&ref="
            "&activationType="
        )
    )
    assert body.endswith(":79000000001")
    assert word(hub, key, "getNumber", service="tg", country="", maxPrice="").endswith(
        ":79000000002"
    )
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:99.00"
    assert _exact(hub.api(key, "getPrices", service="", country=""), JSON) == (
        '{"0":{"tg":{"cost":0.5,"count":1,"physicalCount":1}}}'
    )


def test_max_price_alias(hub: Hub) -> None:
    hub.stocked(count=2, price="0.50")
    key = hub.customer("100.00")
    assert word(hub, key, "getNumber", service="tg", max_price="0.40") == "WRONG_MAX_PRICE:0.50"
    assert word(hub, key, "getNumber", service="tg", maxPrice="0.49") == "WRONG_MAX_PRICE:0.50"
    assert word(hub, key, "getNumber", service="tg", max_price="0.50").endswith(":79000000001")
    assert word(hub, key, "getBalance") == "ACCESS_BALANCE:99.50"


def test_unknown_parameters_are_ignored(hub: Hub) -> None:
    hub.stocked(count=2)
    key = hub.customer("100.00")
    noise = {
        "ref_id": "77",
        "json": "1",
        "lang": "en",
        "forward": "0",
        "fixedPrice": "true",
        "useCashBack": "False",
        "userId": "12345",
        "verification": "false",
        "something_else": "x",
    }
    assert word(hub, key, "getBalance", **noise) == "ACCESS_BALANCE:100.00"
    assert word(hub, key, "getBalanceAndCashBack", **noise) == "ACCESS_BALANCE:100.00"
    body = word(hub, key, "getNumber", service="tg", **noise)
    assert body.endswith(":79000000001")
    activation_id = body.split(":")[1]
    assert word(hub, key, "getStatus", id=activation_id, **noise) == "STATUS_WAIT_CODE"
    assert word(hub, key, "setStatus", id=activation_id, status=1, **noise) == "ACCESS_READY"
    v2 = _exact(hub.api(key, "getNumberV2", service="tg", **noise), JSON)
    assert '"phoneNumber":"79000000002"' in v2
    assert _exact(hub.api(key, "getPrices", **noise), JSON) == "{}"
    response = hub.http.post(PATH, data={"api_key": key, "action": "getBalance", **noise})
    assert _exact(response) == "ACCESS_BALANCE:99.00"


def test_every_answer_is_200_and_bare(hub: Hub) -> None:
    """Errors included: status 200, text/plain, no BOM, no newline."""
    hub.stocked(count=1)
    key = hub.customer("0.00")
    cases = [
        ((None, "getBalance"), {}, "NO_KEY"),
        (("ohc_" + "Q" * 30, "getBalance"), {}, "BAD_KEY"),
        ((key, "nope"), {}, "BAD_ACTION"),
        ((key, "getNumber"), {"service": "zz9"}, "BAD_SERVICE"),
        ((key, "getNumber"), {"service": "tg", "country": "777"}, "BAD_COUNTRY"),
        ((key, "getNumber"), {"service": "wa"}, "NO_NUMBERS"),
        ((key, "getNumber"), {"service": "tg"}, "NO_BALANCE"),
        ((key, "getNumber"), {"service": "tg", "maxPrice": "0.1"}, "WRONG_MAX_PRICE:0.50"),
        ((key, "getNumber"), {"service": "tg", "phoneException": "7"}, "WRONG_EXCEPTION_PHONE"),
        ((key, "getStatus"), {"id": "x"}, "WRONG_ACTIVATION_ID"),
        ((key, "getStatus"), {"id": "424242"}, "NO_ACTIVATION"),
        ((key, "setStatus"), {"id": "424242", "status": "6"}, "NO_ACTIVATION"),
        ((key, "getBalance"), {}, "ACCESS_BALANCE:0.00"),
    ]
    for (api_key, action), params, answer in cases:
        for method in ("GET", "POST"):
            query: dict[str, Any] = {"action": action, **params}
            if api_key is not None:
                query["api_key"] = api_key
            if method == "GET":
                response = hub.http.get(PATH, params=query)
            else:
                response = hub.http.post(PATH, data=query)
            assert _exact(response) == answer, (method, action, params)
