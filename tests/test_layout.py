"""The package's layers, checked on the source: no import cycles, and each layer imports only the
layers below it (function-level imports included, since they run too).

    core (flat: config, data, features, model, checkpoint, decode, metrics, ...)
    backends, audio         -> core
    corpus                  -> core, audio
    qa (the answering API)  -> core, backends, audio
    archive (ask an archive)-> core, backends, audio, corpus, qa
    serve                   -> core, backends, audio, qa, archive
    cli                     -> everything
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "spokenqa"
OUTER = ("backends", "audio", "corpus", "archive", "serve", "cli")
ALLOWED = {
    "core": {"core"},
    "backends": {"core", "backends"},
    "audio": {"core", "audio"},
    "corpus": {"core", "audio", "corpus"},
    "qa": {"core", "backends", "audio", "qa"},
    "archive": {"core", "backends", "audio", "corpus", "qa", "archive"},
    "serve": {"core", "backends", "audio", "qa", "archive", "serve"},
    "cli": {"core", "backends", "audio", "corpus", "qa", "archive", "serve", "cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py") if "release_model" not in p.parts}


def imports(path: Path, known: set[str]) -> set[str]:
    """spokenqa modules that `path` imports anywhere in its code (`from spokenqa.x import y` is
    spokenqa.x.y when that is a module, else spokenqa.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("spokenqa.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("spokenqa"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in OUTER:
        return parts[1]
    if module == "spokenqa.__main__":  # `python -m spokenqa`: the CLI's entry point
        return "cli"
    return "qa" if module == "spokenqa.qa" else "core"


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(path, set(mods)) - {name} for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from spokenqa.audio import asr\n    import spokenqa.data\n")
    assert imports(probe, {"spokenqa.audio.asr", "spokenqa.data"}) == {"spokenqa.audio.asr", "spokenqa.data"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_each_layer_imports_only_the_layers_below_it():
    wrong = [f"{m} ({layer(m)}) imports {d} ({layer(d)})" for m, deps in sorted(graph().items())
             for d in sorted(deps) if layer(d) not in ALLOWED[layer(m)]]
    assert wrong == []


def test_every_outer_layer_is_a_package():
    for name in OUTER:
        assert (SRC / name / "__init__.py").is_file(), name
