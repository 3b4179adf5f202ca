"""Talking to exchanges through ccxt: building clients from settings, retries, pagination."""
