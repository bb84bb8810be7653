"""Schemathesis hooks for .ci/schemathesis.

`vouch_not_a_server_error` replaces schemathesis's `not_a_server_error`: a 500 is always a
failure (Vouch itself went wrong), and so is any 5xx whose body is not Vouch's documented error.
A 502, 503 or 504 naming an upstream (`psa_…`, `microsoft_…`, `sms_…`) is the documented
terminal state of an upstream failure, which the fuzzer causes on purpose when it points a PSA
connection at an address that does not exist; it is allowed.
"""
import schemathesis

UPSTREAM_PREFIXES = ("psa_", "microsoft_", "sms_")


@schemathesis.check
def vouch_not_a_server_error(ctx, response, case):
    status = response.status_code
    if status < 500:
        return
    try:
        body = response.json()
    except Exception:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if status in (502, 503, 504) and isinstance(code, str) and code.startswith(UPSTREAM_PREFIXES):
        return
    raise AssertionError(f"server error {status} ({code or 'no code'})")
