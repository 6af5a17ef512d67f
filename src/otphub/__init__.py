"""OTPHub: an SMS-activation server speaking the sms-activate protocol."""

__version__ = "0.1.0"
