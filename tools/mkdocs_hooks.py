"""mkdocs hook: tables generated from scicli's registries when the site is built.

A page writes a marker on its own line and the hook replaces it:

    <!-- scicli:operators -->       the registered forward operators and their settings
    <!-- scicli:methods -->         every --method with its summary and defaults
    <!-- scicli:parameters -->      one table of parameters (name, default, meaning) per method
    <!-- scicli:denoisers -->       the --denoiser names

So the documentation cannot drift from the code: a new method or parameter appears at the next
build (`make docs`, and `make test` runs it with --strict).

MathJax (maths on the pages) is copied into the site from the ``django-static-mathjax`` wheel of
the ``docs`` extra (MathJax 3.2.2, Apache-2.0; a static-files package, no Django needed): one
self-contained script with SVG output and its fonts inside, so the built site renders its
formulas offline and nothing is fetched when it is built or viewed.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's scicli, not another install

from scicli.cli.methods import format_default  # noqa: E402
from scicli.methods import METHODS  # noqa: E402
from scicli.physics import OPERATORS  # noqa: E402
from scicli.priors import DENOISERS  # noqa: E402


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def operators_table() -> str:
    rows = []
    for entry in OPERATORS.entries():
        cls = entry.factory
        roles = ", ".join([*cls.roles, *(f"[{r}]" for r in cls.optional_roles)])
        settings = ", ".join(f"`{n}={format_default(p.default)}`" for n, p in cls.settings().items()) or "-"
        rows.append([f"[`{entry.name}`]({entry.name}.md)", entry.summary, roles,
                     "yes" if cls.has_gram_inverse else "no", settings])
    return _table(["operator", "what it models", "arrays (`--mask` is the first)", "GAP", "settings (`-O`)"], rows)


def methods_table() -> str:
    rows = []
    for entry in METHODS.entries():
        cls = entry.factory
        name = f"`{entry.name}`" + (f" ({', '.join(f'`{a}`' for a in entry.aliases)})" if entry.aliases else "")
        rows.append([f"[{name}](#{entry.name})", "yes" if getattr(cls, "trainable", False) else "no", entry.summary])
    return _table(["method", "trainable", "what it does"], rows)


def parameters_tables() -> str:
    parts = []
    for entry in METHODS.entries():
        params = entry.factory.describe()
        parts.append(f"### {entry.name} {{ #{entry.name} }}\n\n{_cell(entry.summary)}\n")
        if params:
            parts.append(_table(["parameter", "default", "meaning"],
                                [[f"`{n}`", f"`{format_default(d)}`", h] for n, d, h in params]))
        else:
            parts.append("No parameters.\n")
    return "\n".join(parts)


def denoisers_table() -> str:
    rows = [[f"`{e.name}`", "yes" if e.extra.get("trainable") else "no", e.summary] for e in DENOISERS.entries()]
    return _table(["denoiser", "trainable", "what it does"], rows)


MARKERS = {
    "<!-- scicli:operators -->": operators_table,
    "<!-- scicli:methods -->": methods_table,
    "<!-- scicli:parameters -->": parameters_tables,
    "<!-- scicli:denoisers -->": denoisers_table,
}


def on_page_markdown(markdown: str, page: object, config: object, files: object) -> str:
    """Replace each marker line by its generated table."""
    for marker, make in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


_SPHINX_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|obj|exc):(?=<code>)")


def on_page_content(html: str, page: object, config: object, files: object) -> str:
    """Docstrings use Sphinx roles (``:func:`load```, readable in ``help()``); in the generated
    API pages they would show as ``:func:load``: keep only the code span."""
    return _SPHINX_ROLE.sub("", html)


MATHJAX = "js/mathjax/tex-svg.js"
"""Where the site serves MathJax from (``extra_javascript`` in mkdocs.yml)."""


def mathjax_script() -> Path:
    """MathJax's TeX-to-SVG bundle inside the installed ``django-static-mathjax`` package (found
    without importing it)."""
    spec = importlib.util.find_spec("mathjax")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    script = Path(folders[0]) / "static" / "mathjax" / "es5" / "tex-svg.js" if folders else None
    if script is None or not script.is_file():
        raise PluginError("MathJax not installed: pip install -e '.[docs]' (django-static-mathjax, the MathJax "
                          "files the site serves itself)")
    return script


def on_post_build(config: dict) -> None:
    """Copy MathJax into the built site, beside the pages that load it."""
    target = Path(config["site_dir"]) / MATHJAX
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mathjax_script(), target)
