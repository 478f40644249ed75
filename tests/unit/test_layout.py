"""docs/architecture.md describes the tree as it is: every module and package named, nothing named that is gone."""

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPERATOR = REPO / "operator"
ROOTS = {"chaosdemo": OPERATOR, "chaosdemo_local": REPO / "proving"}  # each package's folder
DOC = REPO / "docs" / "architecture.md"


def modules_in_tree() -> set[str]:
    return {str(p.relative_to(ROOTS[root])) for root in ROOTS
            for p in (ROOTS[root] / root).rglob("*.py") if p.name != "__init__.py"}


def packages_in_tree() -> set[str]:
    """The layers: each root's packages one level down (a package inside one, like clients/kube, is of its layer)."""
    return {str(p.parent.relative_to(ROOTS[root])) for root in ROOTS
            for p in (ROOTS[root] / root).glob("*/__init__.py")}


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_module_tables_name_every_module_in_the_tree_and_nothing_else() -> None:
    named = set(re.findall(r"^\| `(chaosdemo(?:_local)?/[\w/]+\.py)` \|", section(DOC.read_text(), "Modules"), re.M))
    tree = modules_in_tree()
    assert not tree - named, f"modules missing from docs/architecture.md: {sorted(tree - named)}"
    assert not named - tree, f"docs/architecture.md names modules that do not exist: {sorted(named - tree)}"


def test_each_module_sits_under_the_heading_of_its_own_package() -> None:
    heading = ""
    for line in section(DOC.read_text(), "Modules").splitlines():
        if m := re.match(r"^### `([\w/]+)/`$", line):
            heading = m.group(1)
        elif m := re.match(r"^\| `([\w/]+\.py)` \|", line):
            assert str(Path(m.group(1)).parent) == heading, f"{m.group(1)} is listed under {heading}/"


def test_the_layer_table_names_every_package_and_the_contracts_cover_them() -> None:
    layers = section(DOC.read_text(), "The layers")
    packages = packages_in_tree()
    for pkg in packages:
        short = pkg.split("/", 1)[1]
        assert f"`{pkg}`" in layers or f"`{short}`" in layers, f"{pkg} is not in the layer table"
    contracts = configparser.ConfigParser()
    contracts.read(REPO / ".importlinter")
    layered = " ".join(contracts[s].get("layers", "") for s in contracts.sections())
    for pkg in packages:
        if pkg.startswith("chaosdemo/plugin"):
            continue  # the plugin has its own forbidden contract, checked below
        assert pkg.replace("/", ".") in layered, f"{pkg} is in no layers contract of .importlinter"
    assert "chaosdemo.plugin" in contracts["importlinter:contract:plugin-is-a-client"]["source_modules"]


def test_every_contract_the_page_lists_is_in_importlinter_and_every_contract_is_listed() -> None:
    bullets = [line.split(":", 1)[0] for line in section(DOC.read_text(), "The layers").splitlines()
               if line.startswith("- `")]
    listed = {name for head in bullets for name in re.findall(r"`([\w-]+)`", head)}
    contracts = configparser.ConfigParser()
    contracts.read(REPO / ".importlinter")
    declared = {s.split(":", 2)[2] for s in contracts.sections() if s.startswith("importlinter:contract:")}
    assert listed == declared


def test_no_class_over_150_lines_and_no_function_over_50_in_the_operator_or_the_proving_ground() -> None:
    """Issues 19 and 29: small pieces. Measured from each definition's first to its last line, decorators aside."""
    import ast

    too_big = []
    for root, folder in ROOTS.items():
        for path in sorted((folder / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                size = (node.end_lineno or node.lineno) - node.lineno + 1 if hasattr(node, "end_lineno") else 0
                if (isinstance(node, ast.ClassDef) and size > 150) or \
                        (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and size > 50):
                    too_big.append(f"{path.relative_to(folder)}:{node.lineno} {node.name} ({size} lines)")
    assert too_big == []


def test_the_run_changes_no_status_in_place_the_story_tells_it() -> None:
    """Issue 29: a demo's status is a value the story (core/story.py) returns; run/ never assigns into one."""
    import ast

    written = []
    for path in sorted((OPERATOR / "chaosdemo" / "run").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else []
            for t in targets:
                text = ast.unparse(t)
                if isinstance(t, ast.Attribute | ast.Subscript) and re.search(r"(^|\.)(status|st)\.|\.status$", text):
                    written.append(f"{path.relative_to(OPERATOR)}:{node.lineno} {text}")
    assert written == []
