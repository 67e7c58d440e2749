"""Settings are grouped: every setting in exactly one group, each command's --help lists only the
groups it reads (while every command still takes every flag); tests/test_readme.py checks docs/settings.md's groups."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from shoprank.cli import build_parser
from shoprank.settings import SETTING_GROUPS, Settings, group_of, settings_from_args


def _help(*command: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return out.getvalue()


def _flags(text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", text, flags=re.MULTILINE))


def test_every_setting_is_in_exactly_one_group() -> None:
    listed = [name for _, names in SETTING_GROUPS.values() for name in names]
    ungrouped = [name for name in Settings.model_fields if name not in listed]
    assert not ungrouped, (
        f"settings in no group: {', '.join(ungrouped)}; add each to one of SETTING_GROUPS in "
        f"shoprank/settings.py ({', '.join(SETTING_GROUPS)}) and to that group's table in docs/settings.md"
    )
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not twice, f"settings in more than one group: {twice}"
    unknown = sorted(set(listed) - set(Settings.model_fields))
    assert not unknown, f"SETTING_GROUPS names settings that do not exist: {unknown}"


def test_group_of_names_the_fix_for_an_ungrouped_setting() -> None:
    assert group_of("tls_key") == "sidecar_server"
    with pytest.raises(KeyError, match="add it to one of SETTING_GROUPS"):
        group_of("not_a_setting")


def test_a_command_shows_only_the_groups_it_reads() -> None:
    index, sidecar = _flags(_help("index")), _flags(_help("sidecar"))
    assert {"--tls-key", "--batch-token-budget", "--listen", "--drain-seconds"} <= sidecar
    assert not {"--tls-key", "--batch-token-budget", "--listen", "--drain-seconds"} & index
    assert {"--opensearch-bulk-chunk-docs", "--engine", "--data-dir", "--bi-encoder-precision"} <= index
    assert "--opensearch-bulk-chunk-docs" not in sidecar
    pool = _flags(_help("eval-pool"))
    assert "--batch-token-budget" not in pool
    assert "--tls-key" not in pool
    assert "--data-dir" in pool
    # serve starts a sidecar child with its settings: it reads (and shows) every group.
    assert {"--" + name.replace("_", "-") for name in Settings.model_fields} <= _flags(_help("serve"))


def test_a_flag_a_command_does_not_show_is_still_taken() -> None:
    """A script passing a flag of another group keeps working (only --help got shorter)."""
    args = build_parser().parse_args(["index", "--batch-token-budget", "512", "--tls-client-ca", "ca.pem"])
    settings = settings_from_args(args)
    assert settings.batch_token_budget == 512
    assert str(settings.tls_client_ca) == "ca.pem"
    assert "--batch-token-budget" in _help("bench")


def test_help_titles_each_group() -> None:
    text = _help("index")
    titles = re.findall(r"^(\w+) settings: ", text, flags=re.MULTILINE)
    assert titles == ["general", "engine", "index", "models", "intent"]
