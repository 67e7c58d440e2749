"""The search's interleaving hook: in an experiment, page 1 is both rankers' pages team-drafted
(frontdoor/interleave.py holds the draft), and the teams go on the UBI record."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from frontdoor.interleave import Ranker, team_draft
from frontdoor.page import SearchPage, SearchRequest


def interleaved_page(
    request: SearchRequest, rankers: tuple[Ranker, Ranker], page_of: Callable[[SearchRequest], SearchPage]
) -> SearchPage:
    """Both rankers' page 1, merged by team draft (a fresh coin per search); the teams go on the record."""
    teams = dict(zip("ab", rankers, strict=True))
    pages = {team: page_of(replace(request, mode=r.mode, rerank=r.rerank)) for team, r in teams.items()}
    items = {team: {r.product.id: r for r in page.results} for team, page in pages.items()}
    drafted = team_draft(list(items["a"]), list(items["b"]), request.page_size, random.Random())
    page = pages["a"]
    page.results = [items[team][pid] for pid, team in drafted]
    page.experiment = {
        "experiment": "interleave",
        "variant": f"a={teams['a'].name} b={teams['b'].name}",
        "interleave_teams": "".join(team for _, team in drafted),
    }
    return page
