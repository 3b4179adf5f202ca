"""The HTML pages: sign-in with a token (kept in an HttpOnly, SameSite=Strict cookie, so another site
cannot post a pause with it), My account, and the operator's Market X-ray, Models and Operations."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xray_runtime.api_tokens import Principal, resolve
from xray_runtime.user_control import UserControl
from xray_web import model_reads, ops_reads, reads
from xray_web.auth import COOKIE
from xray_web.html import Raw, e, heatmap, line_chart, page, table

router = APIRouter(include_in_schema=False)


def _who(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE, "")
    return resolve(request.app.state.sources.engine, token) if token else None


def _src(request: Request) -> reads.Sources:
    return request.app.state.sources


def _operator(request: Request) -> Principal:
    who = _who(request)
    if who is None:
        raise HTTPException(401, "sign in first")
    if not who.operator:
        raise HTTPException(403, "operator only")
    return who


@router.get("/", response_class=HTMLResponse, response_model=None)
def home(request: Request) -> Response:
    who = _who(request)
    if who is not None:
        return RedirectResponse("/xray" if who.operator else "/account", 303)
    form = ('<form method="post" action="/login"><label>Token <input name="token" type="password" '
            'size="60" autofocus></label> <button type="submit">Sign in</button></form>'
            '<p class="muted">A token comes from <code>xray users token ID</code>.</p>')
    return HTMLResponse(page("Sign in", form, signed_in=False))


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    body = (await request.body())[:4096].decode("utf-8", "replace")
    token = (parse_qs(body).get("token") or [""])[0].strip()
    who = resolve(_src(request).engine, token) if token else None
    if who is None:
        return HTMLResponse(page("Sign in", '<p id="error">That token is not valid: ask for a new one '
                                 '(<code>xray users token ID</code>). <a href="/">Try again</a></p>',
                                 signed_in=False), 401)
    response = RedirectResponse("/xray" if who.operator else "/account", 303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=7 * 86400)
    return response


@router.get("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/", 303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse, response_model=None)
def my_account(request: Request) -> Response:
    who = _who(request)
    if who is None:
        return RedirectResponse("/", 303)
    if who.user_id is None:
        return RedirectResponse("/xray", 303)
    src, uid = _src(request), who.user_id
    me = reads.account(src, uid)
    curve = reads.equity_curve(src, uid)
    risk = me["risk"]
    equity = "-" if me["equity"] is None else f"{me['equity']:,.2f} (bar {me['equity_at']})"
    action = "resume" if me["control"] != "active" else "pause"
    body = [
        f'<p>{e(me["account"])} · {e(me["mode"])} · {e(me["exchange"])} · status {e(me["status"])} · '
        f'trading: <b id="control">{e(me["control"])}</b></p>',
        f'<form class="inline" method="post" action="/account/{action}"><button id="{action}" '
        f'type="submit">{"Resume trading" if action == "resume" else "Pause new entries"}</button></form>',
        f"<h2>Equity</h2><p>{e(equity)}</p>",
        line_chart([(p["ts_ms"], p["equity"]) for p in curve], id_="equity-chart", label="equity"),
        "<h2>Risk</h2>",
        table(["profile", "trade %", "max position $", "daily loss stop", "drawdown stop", "killed",
               "day open", "peak"],
              [[risk["profile"], f"{risk['trade_percentage']:.1%}", f"{risk['max_position_usd']:,.0f}",
                f"{risk['max_daily_loss']:.1%}", f"{risk['max_drawdown']:.1%}",
                "yes" if risk["killed"] else "no",
                _money(risk["day_open_equity"]), _money(risk["peak_equity"])]], id_="risk"),
        "<h2>Positions</h2>",
        table(["symbol", "amount", "last fill price", "value"],
              [[p["symbol"], f"{p['amount']:.8g}", p["last_fill_price"], p["value"]]
               for p in reads.positions(src, uid)], id_="positions", empty="no positions"),
        "<h2>Open orders</h2>",
        table(["bar", "symbol", "side", "amount", "status"],
              [[t["bar"], t["symbol"], t["side"], t["amount"], t["status"]]
               for t in reads.open_orders(src, uid)], id_="open-orders", empty="no open orders"),
        "<h2>Trades</h2>",
        _trades(reads.trades(src, uid)),
    ]
    return HTMLResponse(page("My account", "".join(body)))


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _params(params: dict[str, Any]) -> str:
    """Parameters for reading (floats to 4 significant digits); the API keeps them exact."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) \
        or "defaults"


def _short(value: Any) -> Any:
    return f"{value:+.3f}" if isinstance(value, float) else value


def _trades(trades: list[dict[str, Any]]) -> str:
    rows = []
    for t in trades:
        lin = t["lineage"]
        side = Raw(f'<span class="{e(t["side"])}">{e(t["side"])}</span>')
        rows.append([t["bar"], t["symbol"], side, f"{t['amount']:.6g}", t["average"] or "-", t["status"],
                     lin["model_version"] or "- (rules)", f"{lin['strategy']} {_params(lin['params'])}",
                     lin["data_version"], lin["bundle_version"]])
    return table(["bar (UTC)", "symbol", "side", "amount", "avg price", "status", "model version",
                  "parameter set", "data version", "bundle"], rows, id_="trades", empty="no trades yet")


@router.post("/account/{action}", response_model=None)
def control(request: Request, action: str) -> Response:
    who = _who(request)
    if who is None or who.user_id is None:
        raise HTTPException(401, "sign in with a user's token first")
    store = UserControl(_src(request).engine)
    if action == "pause":
        store.pause(who.user_id, "web")
    elif action == "resume":
        store.resume(who.user_id, "web")
    else:
        raise HTTPException(404, f"no action {action!r}: pause or resume")
    return RedirectResponse("/account", 303)


@router.get("/xray", response_class=HTMLResponse)
def market_xray(request: Request) -> HTMLResponse:
    _operator(request)
    src = _src(request)
    uni = ops_reads.universe(src)
    corr = ops_reads.correlation(src)
    kept = [[r.get("symbol"), "kept" if r.get("kept") else "dropped", r.get("reason") or "",
             r.get("best_strategy") or ""] for r in uni["symbols"]]
    listed = {row[0] for row in kept}  # the research lists most markets it never got: each once
    kept += [[r["symbol"], "dropped (market)", r["reason"], ""] for r in uni["dropped_markets"]
             if r["symbol"] not in listed]
    order = [r["symbol"] for r in sorted(corr["clusters"], key=lambda r: r.get("position", 0))]
    values = {(r["symbol_a"], r["symbol_b"]): r["corr"] for r in corr["pairs"] if r["corr"] is not None}
    bundle = ops_reads.bundle(src)
    bundle_rows = [[s["symbol"], s["strategy"], _model(s["model"], s["model_version"]), _params(s["params"]),
                    s["group"], _num(s["rule_sharpe"]), _num(s["model_sharpe"]), s["reason"] or "-"]
                   for s in (bundle or {}).get("per_symbol", [])]
    sentiment = ops_reads.sentiment(src)
    cols = list(sentiment[0]) if sentiment else []
    body = [
        f"<p>{e(uni['exchange'])} {e(uni['timeframe'])}</p><h2>Universe</h2>",
        table(["symbol", "verdict", "reason", "strategy"], kept, id_="universe", empty="no research yet"),
        "<h2>Correlation</h2>", heatmap(order, values),
        table(["symbol", "cluster"], [[r["symbol"], r["cluster"]] for r in corr["clusters"]], id_="clusters"),
        "<h2>Sentiment</h2>", table(cols, [[_short(r[c]) for c in cols] for r in sentiment], id_="sentiment"),
        f"<h2>Current bundle</h2><p>{e((bundle or {}).get('version', 'none promoted yet'))}</p>",
        table(["symbol", "strategy", "model", "parameters", "group", "rule Sharpe", "model Sharpe",
               "selection"], bundle_rows, id_="bundle"),
    ]
    return HTMLResponse(page("Market X-ray", "".join(body), operator=True))


def _model(kind: str | None, version: Any) -> str:
    return "-" if not kind else f"{kind} v{version}" if version is not None else kind


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _gate(gate: dict[str, Any]) -> str:
    """The gate's verdict with its evidence: `keep (p=0.412, 3 trials, walk-forward evidence)` and why."""
    if not gate:
        return "not judged yet"
    shown = f"{gate.get('verdict') or 'judged'} (p={_num(gate.get('p_value'), '.3f')}, "
    shown += f"{gate.get('trials', '-')} trials, {gate.get('source', '-')} evidence): "
    shown += str(gate.get("reason", ""))
    return shown + (f" · demoted: {gate['demoted']}" if gate.get("demoted") else "")


def _shadow(record: dict[str, Any] | None) -> str:
    if not record:
        return "no shadow record"
    return (f"{record['bars']} bars ({record['bars_long']} of {record['book_bars']} book-bars long, "
            f"{record['books']} symbols) · net {_num(record['net_return'], '+.2%')} · "
            f"Sharpe {_num(record['sharpe'])}")


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> HTMLResponse:
    _operator(request)
    rows = []
    for m in model_reads.models(_src(request)):
        metrics, gate = m["metrics"], m["gate"]
        low, high = (metrics.get(k, gate.get(k)) for k in ("oos_sharpe_ci_low", "oos_sharpe_ci_high"))
        ci = f"[{_num(low)}, {_num(high)}]"
        rows.append([m["name"], m["version"], m["flavor"], ", ".join(m["aliases"]) or "-",
                     _num(metrics.get("oos_sharpe")), ci, _num(metrics.get("oos_return"), "+.1%"),
                     _num(metrics.get("bh_sharpe")), _gate(m["gate"]), _shadow(m["shadow"])])
    body = table(["model", "version", "flavor", "aliases", "OOS Sharpe", "95% CI", "OOS return",
                  "B&H Sharpe", "gate", "shadow record"], rows, id_="models",
                 empty="no models registered yet")
    return HTMLResponse(page("Models", body, operator=True))


@router.get("/ops", response_class=HTMLResponse)
def operations(request: Request) -> HTMLResponse:
    _operator(request)
    info = ops_reads.runtime(_src(request))
    health = info["health"]
    body = [
        f"<p>{info['active_users']} active users</p><h2>Processes</h2>",
        table(["process", "users"], [[p["process"], p["users"]] for p in info["processes"]], id_="processes"),
        "<h2>Health</h2>",
        f"<pre id='health'>{e(json.dumps(health, indent=1, default=str))}</pre>",
        "<h2>Rate-limit budget</h2>",
        table(["scope", "weight per window", "window s", "burst"],
              [[r["scope"], r["limit"], r["window_s"], r["burst"]] for r in info["rate_limits"]],
              id_="rate-limits"),
        "<h3>Busiest scopes now (shared limiter on Redis)</h3>",
        table(["scope", "weight in use", "available at once", "burst"],
              [[c["scope"], c["in_use"], c["available_now"], c["burst"]] for c in info["rate_limit_cells"]],
              id_="rate-limit-cells", empty="no shared limiter (embedded runtime) or every scope idle"),
    ]
    return HTMLResponse(page("Operations", "".join(body), operator=True))
