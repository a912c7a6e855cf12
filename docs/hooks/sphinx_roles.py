"""mkdocs hook: Sphinx cross-reference roles in docstrings read as code on the API page.

drunet's docstrings write ``:class:`~drunet.x.Name```; Markdown turns the backticks into code and
leaves the role in front (``:class:<code>~drunet.x.Name</code>``). The role is dropped, and a
``~`` keeps only the last name, as Sphinx shows it.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>"
)


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return ROLE.sub(_code, html)
