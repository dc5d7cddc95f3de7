"""Keep clients' feature values out of the server log.

BentoML 1.4 logs every rejected request at ERROR with pydantic's traceback, which quotes
the offending values (`input_value=...`): patient data in a log aggregator. This filter
turns those records into one INFO line naming only the fields and the rules broken; the
client still gets the full 400 answer, and tabular_validation_failures_total counts them.
"""

from __future__ import annotations

import logging

import pydantic

# BentoML's log_exception() writes through this logger (bentoml/_internal/server/http_app.py).
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
MAX_LISTED = 10


def describe(exc: pydantic.ValidationError) -> str:
    """'age: less_than_equal; records.3.sex: missing' (no values), at most MAX_LISTED."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    parts = [f"{'.'.join(map(str, e['loc'])) or '<body>'}: {e['type']}"
             for e in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        parts.append(f"... {len(errors) - MAX_LISTED} more")
    return "; ".join(parts)


class RedactRejectedInput(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, pydantic.ValidationError):
            # BentoML's record is ("Exception on %s [%s]", path, method).
            args = record.args if isinstance(record.args, tuple) else ()
            path, method = (*args, "?", "?")[:2]
            record.msg = "Rejected %s %s: %s"
            record.args = (method, path, describe(exc))
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    """Idempotent: one filter on BentoML's request logger, in this process."""
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, RedactRejectedInput) for f in logger.filters):
        logger.addFilter(RedactRejectedInput())
