"""MEXC's error answers: `{"code": ..., "msg": ...}` with the HTTP status MEXC uses.

Codes are MEXC's own, chosen so that stock ccxt (its `exceptions` map in ccxt/mexc.py) raises the same
exception class it raises against the real exchange:

=========  =================================================  ==========================
code       meaning                                            ccxt raises
=========  =================================================  ==========================
-1121      Invalid symbol.                                    BadSymbol
-2011      Unknown order sent. (cancel of a missing order)    BadRequest
-2013      Order does not exist. (query of a missing order)   ExchangeError
-2010      Duplicate order sent. (--duplicate-ids reject)     ExchangeError
-1128      Combination of optional parameters invalid.        BadRequest
400        api key required                                   BadRequest
404        Not Found (unknown path)                           ExchangeError
429        Too many requests (weight limit exceeded)          RateLimitExceeded
10096      decimal places too long (quantity/price)           InvalidOrder
10102      value cannot be zero or negative                   InvalidOrder
30000      suspended transaction for the symbol (halted)      ExchangeError
30002      minimum transaction volume/amount not reached      InvalidOrder
30003      maximum transaction volume exceeded                InvalidOrder
30004      Insufficient position                              InsufficientFunds
30029      maximum number of open orders reached              InvalidOrder
30041      LIMIT_MAKER order would immediately take           InvalidOrder
700001     API-key format invalid. (unknown key)              AuthenticationError
700002     Signature for this request is not valid.           AuthenticationError
700003     Timestamp outside of the recvWindow                InvalidNonce
700004     Mandatory parameter missing                        BadRequest
700005     recvWindow must less than 60000                    InvalidNonce
700008     Illegal characters found in parameter              BadRequest
730002     Your input param is invalid (e.g. interval)        BadRequest
=========  =================================================  ==========================
"""

from __future__ import annotations


class ApiError(Exception):
    """A request MEXC would refuse; the server turns it into MEXC's JSON error body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def invalid_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def missing_param(name: str) -> ApiError:
    return ApiError(700004, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal_param(name: str) -> ApiError:
    return ApiError(700008, f"Illegal characters found in parameter '{name}'.")


def invalid_param(detail: str) -> ApiError:
    return ApiError(730002, f"Your input param is invalid: {detail}")


def bad_combination(detail: str) -> ApiError:
    return ApiError(-1128, f"Combination of optional parameters invalid. {detail}")


def order_id_required() -> ApiError:
    return ApiError(700004, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")


def duplicate_order() -> ApiError:
    return ApiError(-2010, "Duplicate order sent.")


def order_not_found() -> ApiError:
    return ApiError(-2013, "Order does not exist.")


def unknown_order() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")


def symbol_halted() -> ApiError:
    return ApiError(30000, "Suspended transaction for the symbol")


def too_many_decimals(name: str, allowed: int) -> ApiError:
    return ApiError(10096, f"{name} decimal places is too long, at most {allowed}")


def not_positive(name: str) -> ApiError:
    return ApiError(10102, f"{name} cannot be zero or negative")


def below_minimum(what: str, minimum: str) -> ApiError:
    return ApiError(30002, f"The minimum transaction {what} cannot be less than: {minimum}")


def above_maximum(maximum: str) -> ApiError:
    return ApiError(30003, f"The maximum transaction volume cannot be greater than: {maximum}")


def insufficient_position() -> ApiError:
    return ApiError(30004, "Insufficient position")


def too_many_open_orders(limit: int) -> ApiError:
    return ApiError(30029, f"Cannot exceed the maximum order limit: {limit}")


def would_take() -> ApiError:
    return ApiError(30041, "Current order type can not place order: a LIMIT_MAKER order would take")


def api_key_required() -> ApiError:
    return ApiError(400, "api key required")


def unknown_api_key() -> ApiError:
    return ApiError(700001, "API-key format invalid.")


def bad_signature() -> ApiError:
    return ApiError(700002, "Signature for this request is not valid.")


def outside_recv_window() -> ApiError:
    return ApiError(700003, "Timestamp for this request is outside of the recvWindow.")


def recv_window_too_large(limit_ms: int) -> ApiError:
    return ApiError(700005, f"recvWindow must less than {limit_ms}")


def too_many_requests() -> ApiError:
    return ApiError(429, "Too many requests, please try again later", status=429)


def not_found() -> ApiError:
    return ApiError(404, "Not Found", status=404)


def method_not_allowed() -> ApiError:
    return ApiError(405, "Method Not Allowed", status=405)
