"""The ASGI application: the sms-activate handler and the supplier endpoint."""
