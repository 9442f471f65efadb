"""webcallback: the Acrobits "Web Callback" web service, with its own SIP engine.

The app sends an HTTP request with a destination number and the user's callback number; the
service answers at once, then calls both numbers and connects the two calls.
"""

__version__ = "0.1.0"
