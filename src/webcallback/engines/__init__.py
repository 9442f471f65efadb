"""Telephony engines: the only layer that talks SIP (or ARI). See `base` for the contract."""
