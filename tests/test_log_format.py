"""JSON log lines: one object a line, with the fields log shippers index."""

from __future__ import annotations

import io
import json
import logging

from shoprank.log_format import log_handler


def test_json_lines_carry_level_logger_message_and_exception() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("shoprank.test.json")
    logger.propagate = False
    logger.addHandler(log_handler("json", stream))
    try:
        logger.warning("reload refused: %s", "bad onnx\nsecond line")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("it failed")
    finally:
        logger.handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # newlines inside messages stay inside one JSON line
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING"
    assert first["logger"] == "shoprank.test.json"
    assert first["message"] == "reload refused: bad onnx\nsecond line"
    assert first["ts"].endswith("+00:00")
    assert "RuntimeError: boom" in second["exception"]


def test_text_format_is_one_readable_line() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("shoprank.test.text")
    logger.propagate = False
    logger.addHandler(log_handler("text", stream))
    try:
        logger.error("no metrics endpoint")
    finally:
        logger.handlers.clear()
    assert stream.getvalue().rstrip().endswith("ERROR shoprank.test.text: no metrics endpoint")
