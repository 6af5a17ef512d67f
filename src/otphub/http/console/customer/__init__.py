"""The customer's pages: balance, buying, the live activation, history, keys, webhooks."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from otphub.http.console.customer import activation, buy, history, home, keys, webhooks


def routes() -> list[BaseRoute]:
    return [
        Route("/", home.home, methods=["GET"]),
        Route("/buy", buy.buy_page, methods=["GET", "POST"]),
        Route("/buy/offers", buy.offers_fragment, methods=["GET"]),
        Route("/buy/operators", buy.operators_fragment, methods=["GET"]),
        Route("/activations/{activation_id}", activation.activation_page, methods=["GET"]),
        Route("/activations/{activation_id}/events", activation.activation_events, methods=["GET"]),
        *(
            Route(
                f"/activations/{{activation_id}}/{action}",
                activation.change(action),
                methods=["POST"],
            )
            for action in activation.ACTIONS
        ),
        Route("/history", history.history_page, methods=["GET"]),
        Route("/history.csv", history.history_csv, methods=["GET"]),
        Route("/keys", keys.keys_page, methods=["GET", "POST"]),
        Route("/keys/{key_id}/revoke", keys.revoke, methods=["POST"]),
        Route("/webhooks", webhooks.webhooks_page, methods=["GET", "POST"]),
        Route("/webhooks/{webhook_id}/test", webhooks.send_test, methods=["POST"]),
        Route("/webhooks/{webhook_id}/remove", webhooks.remove, methods=["POST"]),
    ]
