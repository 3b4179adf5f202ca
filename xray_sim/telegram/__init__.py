"""A loopback fake of the Telegram Bot API (`fake_bot.start_fake_bot`) for tests and the demo."""
