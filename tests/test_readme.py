"""The README's command blocks run as written (from a scratch directory)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import REPO, run_cli


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.split("#")[0].strip() for block in blocks for ln in block.splitlines()]
    return [ln for ln in lines if ln.startswith("edgeport ")]


def test_readme_has_the_two_setup_commands() -> None:
    text = (REPO / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make \w+", quick_start, flags=re.M) == ["make demo", "make test"]


@pytest.mark.slow
def test_readme_walkthrough_runs(tmp_path: Path) -> None:
    (tmp_path / "tests").symlink_to(REPO / "tests")
    commands = readme_commands()
    assert len(commands) == 14
    outputs = []
    for command in commands:
        result = run_cli(*shlex.split(command)[1:], cwd=tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        outputs.append(result.stdout)
    assert "recommended: onnx-int8-static" in outputs[0]
    assert "eager@batch=7" in outputs[4]
    assert "verified: hashes match" in outputs[4]
    assert "timm.models.mobilenetv3.MobileNetV3" in outputs[3]
    assert "onnx-fp32" in outputs[5]
    assert "1,814.1 M MACs" in outputs[6]
    assert "onnx-int8-static: conv-heavy" in outputs[7]
    assert "pruned torchvision:resnet18: params 11,689,512 → " in outputs[8]
    assert "onnx-int8-static on cpu" in outputs[9]
    assert (tmp_path / "y.npz").is_file()
    assert "onnx-int8-static" in outputs[10]
    assert "wrote maker.key" in outputs[11]
    assert "signed: " in outputs[12]
    assert (tmp_path / "b/manifest.json.sig").stat().st_size == 64
    assert "verified: hashes match" in outputs[13]


def test_design_references_point_at_sections() -> None:
    # The code cites the design as "docs/design.md §N"; each N must be a section of that page.
    design = (REPO / "docs/design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\. ", design, flags=re.M))
    assert sections == {str(n) for n in range(1, 12)}
    cited = {}
    for folder in ("src/edgeport", "bench", "cpp", "tests"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in {".py", ".cpp", ".hpp", ".h"} and path.is_file():
                for ref in re.findall(r"docs/design\.md (§\d+(?:, §\d+)*)", path.read_text()):
                    cited.update({n: path for n in re.findall(r"§(\d+)", ref)})
    assert cited, "no docs/design.md references found"
    assert {n: p for n, p in cited.items() if n not in sections} == {}


def test_readme_links_resolve() -> None:
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/)[^)#]+)", text)
    assert {"docs/design.md", "docs/benchmarking.md", "docs/trust.md"} <= set(links)
    assert [link for link in links if not (REPO / link).is_file()] == []
