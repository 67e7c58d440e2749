"""The test tiers select what they say: unit tests that open a socket fail, marked tiers are kept."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.service  # the inner runs patch sockets in this process
def test_a_unit_test_that_opens_a_socket_fails_and_a_service_test_may(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["tests.tiers"]\n')
    pytester.makepyfile(
        test_sockets="""
import socket
import pytest

def test_unit_binds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))

@pytest.mark.service
def test_service_binds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_unit_binds is a unit test but opened a socket: mark it `service`*"])
    unit_only = pytester.runpytest("-p", "no:cacheprovider", "-m", "unit")
    unit_only.assert_outcomes(failed=1, deselected=1)
