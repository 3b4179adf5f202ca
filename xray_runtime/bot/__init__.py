"""The two-way Telegram bot: link codes, commands, pacing (`xray bot` runs it)."""
