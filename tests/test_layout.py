"""The code's shape: the pipeline stays a pure image library, and imports point one way.

The layering test reads every `import` of bot/, workers/ and pipeline/ with `ast`
(imports inside functions count too) and fails on any cycle between modules and
on any arrow that points up this order, with no exceptions listed.
"""

import ast
import subprocess
import sys

from tests.helpers import PROJECT_ROOT

PACKAGES = ("service", "bot", "workers", "pipeline")  # service.py: the one-command launcher, above the bot
LAYERS = (  # lowest first: a module imports from its own layer or lower ones
    ("pipeline.imageio", "pipeline.align", "pipeline.regions", "pipeline.config", "pipeline.types", "pipeline.errors",
     "pipeline.paste", "pipeline.sheet", "pipeline.selection"),
    ("pipeline.detection", "pipeline.attributes", "pipeline.networks", "pipeline.weights", "pipeline.fetch", "pipeline.provenance"),
    ("pipeline.face",),  # the toolkit the modes share
    ("pipeline.modes",),
    ("pipeline", "pipeline.__main__", "pipeline.analysis", "pipeline.batch", "pipeline.models", "pipeline.offline"),  # entry points
    ("workers",),
    ("bot",),
    ("service",),
)  # fmt: skip
OFFLINE = "pipeline.offline"
OFFLINE_ONLY_LIBRARIES = ("albumentations",)  # training augmentations: never loaded by a worker or the bot


def module_files() -> dict[str, tuple]:
    """Every module of PACKAGES by dotted name, with its file and whether it is a package's `__init__`."""
    modules = {}
    for package in PACKAGES:
        single_file = PROJECT_ROOT / f"{package}.py"
        for path in [single_file] if single_file.is_file() else (PROJECT_ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported_names(path, module: str, is_package: bool) -> set[str]:
    """Absolute dotted names of everything the file imports, anywhere in it (`from X import y` gives X.y)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the project modules it imports, module -> the outside top-level packages it imports)."""
    modules = module_files()
    graph, outside = {}, {}
    for module, (path, is_package) in modules.items():
        names = imported_names(path, module, is_package)
        targets = set()
        for name in names:
            while name and name not in modules:  # X.y is module y, or a name defined in module X
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
        outside[module] = {name.split(".")[0] for name in names if name.split(".")[0] not in PACKAGES}
    return graph, outside


def layer(module: str) -> int:
    """Index in LAYERS of the longest listed name that is the module or a package holding it."""
    best, rank = "", None
    for index, names in enumerate(LAYERS):
        for name in names:
            holds = module == name or (module.startswith(name + ".") and name != "pipeline")
            if holds and len(name) > len(best):
                best, rank = name, index
    assert rank is not None, f"{module} has no place in LAYERS"
    return rank


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def mode_of(module: str) -> str | None:
    """`replace` for pipeline.modes.replace and its submodules; None outside a mode."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["pipeline", "modes"] else None


def test_no_import_cycles():
    graph, _ = import_graph()
    assert cycles(graph) == []


def test_imports_point_down_the_layers():
    graph, _ = import_graph()
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a))
    assert upward == []


def test_modes_never_import_each_other():
    graph, _ = import_graph()
    crossing = sorted(
        f"{a} -> {b}" for a, targets in graph.items() for b in targets if mode_of(a) and mode_of(b) and mode_of(a) != mode_of(b)
    )
    assert crossing == []


def test_workers_and_bot_never_reach_the_offline_tools():
    graph, outside = import_graph()
    leaks = {}
    for module in graph:
        if module.split(".")[0] in ("workers", "bot"):
            reached = reachable(graph, module) | {module}
            offline = sorted(m for m in reached if m == OFFLINE or m.startswith(OFFLINE + "."))
            libraries = sorted(
                f"{m}: {library}" for m in reached for library in OFFLINE_ONLY_LIBRARIES if library in outside[m]
            )
            if offline or libraries:
                leaks[module] = offline + libraries
    assert leaks == {}


def test_the_layering_rules_catch_what_they_name():
    graph = {"pipeline.types": {"pipeline.modes.blur"}, "pipeline.modes.blur": {"pipeline.types"}}
    assert cycles(graph) == [["pipeline.modes.blur", "pipeline.types"]]
    assert layer("pipeline.types") < layer("pipeline.face.covering") < layer("pipeline.modes.blur") < layer("pipeline.analysis")
    assert layer("pipeline.modes.replace.published") == layer("pipeline.modes")
    assert layer("workers.jobs") < layer("bot.telegram") and layer("pipeline.offline.training") < layer("workers.jobs")
    assert mode_of("pipeline.modes.replace.warp") == "replace" and mode_of("pipeline.modes") is None


def test_every_mode_name_has_one_module_behind_it():
    from pipeline.analysis import MODES
    from pipeline.modes import MODE_NAMES

    assert tuple(MODES) == MODE_NAMES
    for name, module in MODES.items():
        assert module.__name__ == f"pipeline.modes.{name}"
        assert callable(module.start) and callable(module.unavailable_reason)


def test_pipeline_imports_no_queue_or_chat_library():
    code = (
        "import sys, pipeline, pipeline.__main__, pipeline.analysis;"
        "bad = {'redis', 'rq', 'telegram', 'aiohttp'} & {m.split('.')[0] for m in sys.modules};"
        "print(sorted(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
