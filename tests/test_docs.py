"""The documentation cannot drift from the code: every operator has its page in the site's
navigation, the generated tables list every registered operator, method and parameter, and the
README's links point at files that exist. (``make test`` also builds the site with
``mkdocs build --strict``, which fails on a broken link or a docstring griffe cannot parse.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from scicli.methods import METHODS
from scicli.physics import OPERATORS

ROOT = Path(__file__).resolve().parents[1]


def _hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_operator_has_a_page_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in OPERATORS.names():
        assert (ROOT / "docs" / "operators" / f"{name}.md").is_file(), name
        assert f"operators/{name}.md" in nav, name


def test_generated_tables_list_every_operator_method_and_parameter() -> None:
    hooks = _hooks()
    page = hooks.on_page_markdown("<!-- scicli:operators -->\n<!-- scicli:methods -->\n<!-- scicli:parameters -->\n",
                                  None, None, None)
    assert "<!-- scicli:" not in page
    for name in OPERATORS.names():
        assert f"[`{name}`]({name}.md)" in page
    for entry in METHODS.entries():
        assert f"### {entry.name} {{ #{entry.name} }}" in page
        for param, _, _ in entry.factory.describe():
            assert f"`{param}`" in page


def test_readme_links_point_at_files() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert links
    for link in links:
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_the_site_loads_nothing_from_the_network(tmp_path: Path) -> None:
    """``make docs`` builds a site that works offline, maths included: no script or stylesheet
    from a CDN, MathJax copied into the site from an installed package."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert not re.findall(r"^\s*-\s*https?://", config, flags=re.M)  # extra_javascript / extra_css entries
    hooks = _hooks()
    assert f"- {hooks.MATHJAX}" in config
    hooks.on_post_build({"site_dir": str(tmp_path)})
    script = tmp_path / hooks.MATHJAX
    assert script.stat().st_size > 1_000_000 and b"MathJax" in script.read_bytes()[:100_000]


def test_every_method_has_a_reference_and_each_section_is_there_once() -> None:
    text = (ROOT / "docs" / "methods.md").read_text()
    references = text.split("## References", 1)[1]
    cited = {name for row in references.splitlines() if row.startswith("|")
             for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    assert set(METHODS.names()) - cited == set()
    for heading in re.findall(r"^## .+$", text, flags=re.M):
        assert text.count(f"\n{heading}\n") == 1, heading


def test_batch_runs_are_documented_and_linked_from_the_readme() -> None:
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    section = guide.split("## Batch runs, job arrays and reproducibility", 1)[1]
    for needle in ("--shard", "--skip-existing", "--json", "--from-report", "scicli info", "--install-completion",
                   "#SBATCH --array", "SLURM_ARRAY_TASK_ID"):
        assert needle in section, needle
    assert "docs/getting-started.md#batch-runs-job-arrays-and-reproducibility" in (ROOT / "README.md").read_text()
