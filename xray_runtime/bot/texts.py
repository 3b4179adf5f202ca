"""What the bot says: HTML (every value escaped), short enough for one Telegram message."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from xray_runtime.account_view import Holding, Profit, Status, Trade

HELP = (
    "<b>X-Ray bot</b>\n"
    "/start CODE — link this chat to your account (the code comes from your operator)\n"
    "/status — trading state, risk and open orders\n"
    "/balance — what X-Ray holds for you\n"
    "/profit — realised and unrealised profit\n"
    "/trades — your latest trades and what decided them\n"
    "/pause — no new entries (exits still happen)\n"
    "/resume — trade again\n"
    "/stop — sell everything X-Ray holds for you and pause (asks to confirm)\n"
    "/help — this list"
)
COMMANDS = [("status", "Trading state and risk"), ("balance", "What X-Ray holds for you"),
            ("profit", "Realised and unrealised profit"), ("trades", "Latest trades"),
            ("pause", "No new entries"), ("resume", "Trade again"), ("stop", "Sell everything and pause"),
            ("help", "All commands")]
NOT_LINKED = ("Sorry, this chat is not linked to an X-Ray account, so there is nothing to show here.\n"
              "If you have an account, ask your operator for a link code and send <code>/start CODE</code>.")
START_WITHOUT_CODE = ("Welcome to X-Ray. To link this chat to your account, ask your operator for a link "
                      "code and send <code>/start CODE</code>.")
STOP_ASK = ("This sells everything X-Ray holds for you at market on the next bar and pauses trading.\n"
            "To go ahead send /confirm_stop within {seconds} seconds. Without it the request expires "
            "and nothing is sold.")
NOTHING_TO_CONFIRM = "There is no stop waiting for confirmation. Send /stop first."


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def num(value: float, digits: int = 2) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def amount(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.8g}"


def status(s: Status) -> str:
    user = s.user
    state = {"active": "trading", "paused": "paused (no new entries)",
             "stopped": "stopped (flattening, no new entries)"}[s.control.state]
    lines = [f"<b>{esc(user.account)}</b> ({esc(user.user_id)}), {esc(user.mode)} on {esc(user.exchange)}",
             f"State: {state}"]
    if user.status != "active":
        lines.append(f"Account disabled: {esc(user.disabled_reason or 'no reason given')}")
    lines.append("Risk: kill switch ON (an operator re-enables)" if s.killed else "Risk: within limits")
    lines.append(f"Equity at today's open: {num(s.day_open_equity)}; peak: {num(s.peak_equity)}")
    lines.append(f"Open orders: {s.open_orders}; symbols held: {s.holdings}")
    return "\n".join(lines)


def balance(holdings: list[Holding]) -> str:
    held = [h for h in holdings if h.amount > 0]
    if not held:
        return "X-Ray holds nothing for you right now."
    lines = ["<b>Held by X-Ray</b> (from the trade journal, valued at the last traded price)"]
    for h in held:
        lines.append(f"{esc(h.symbol)}: {amount(h.amount)} @ avg {num(h.average_cost, 6)}, "
                     f"last {num(h.last_price, 6)} = {num(h.value)}")
    lines.append(f"Total value: {num(sum(h.value for h in held))}")
    return "\n".join(lines)


def profit(p: Profit) -> str:
    if not p.trades:
        return "No trades yet, so no profit or loss."
    lines = [f"<b>Profit</b> over {p.trades} fills",
             f"Realised: {num(p.realised)} (after {num(p.fees_quote)} in fees)",
             f"Unrealised (at the last traded prices): {num(p.unrealised)}"]
    lines += [f"  {esc(symbol)}: {num(value)}" for symbol, value in p.per_symbol.items()]
    lines += [f"Fees in {esc(currency)}: {amount(value)}" for currency, value in p.other_fees.items()]
    return "\n".join(lines)


def trades(items: list[Trade]) -> str:
    if not items:
        return "No trades yet."
    lines = [f"<b>Latest {len(items)} trades</b>"]
    for t in items:
        when = datetime.fromtimestamp(t.timestamp_ms / 1000, UTC).strftime("%m-%d %H:%M")
        why = ""
        if t.lineage is not None:
            model = f", model {esc(t.lineage.model_version)}" if t.lineage.model_version else ""
            why = f" — {esc(t.intent)} by {esc(t.lineage.strategy)}{model}"
        side = esc(t.side.upper())
        lines.append(f"{when} {side} {amount(t.amount)} {esc(t.symbol)} @ {num(t.price, 6)}{why}")
    return "\n".join(lines)
