#!/usr/bin/env python3
"""The module graph of src/, checked against the architecture's rules.

Reads every `crate::…` and `super::…` path in src/**/*.rs, resolves each to
the file of the module it names, and reports:
  - import cycles between files, and between top-level rooms (src/<room>);
  - who imports the HTTP layer (only lib.rs may);
  - binding names read from `Env` outside the entry points.
Prints the room-level graph; exits 1 when a rule is broken.

    python3 scripts/module-graph.py [--dot]
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
# Files allowed to hold binding names and read `Env`: the entry points.
BINDINGS = {"bindings.rs"}
# Typed settings are read from vars and secrets in one place.
SETTINGS = {"config.rs"}
# Macros exported at the crate root, by the file that defines them.
MACROS = {"args": "store/mod.rs"}
DURABLE_OBJECTS = {"limiter/object.rs", "limiter/login_object.rs"}


def module_of(path: Path) -> list[str]:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts


def file_of(parts: list[str]):
    """The file defining the longest prefix of `parts` that is a module."""
    for n in range(len(parts), 0, -1):
        base = SRC.joinpath(*parts[:n])
        for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
            if candidate.exists():
                return candidate
    return SRC / "lib.rs"


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    # Tests may import freely (emulator helpers, fixtures); they are not the architecture.
    return re.split(r"#\[cfg\(test\)\]", text)[0]


PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}")


def references(path: Path, text: str):
    here = module_of(path)
    # `super` in a mod.rs is the parent of its folder's module.
    parent = here[:-1]
    found = []

    def resolve(root: str, rest: list[str]):
        base = [] if root == "crate" else parent
        return base + rest

    for m in GROUP.finditer(text):
        prefix = [p for p in m.group(2).split("::") if p]
        for item in m.group(3).split(","):
            head = item.strip().split("::")[0].strip()
            if head and head[0].islower() and head not in ("self",):
                found.append(resolve(m.group(1), prefix + [head]))
            elif head == "self" or (head and not head[0].islower()):
                found.append(resolve(m.group(1), prefix))
    for m in PATH.finditer(text):
        found.append(resolve(m.group(1), [p for p in m.group(2).split("::") if p]))
    return found


def main() -> int:
    files = sorted(SRC.rglob("*.rs"))
    edges: dict[str, set[str]] = {}
    texts = {}
    for f in files:
        rel = str(f.relative_to(SRC))
        text = strip_comments(f.read_text())
        texts[rel] = text
        targets = edges.setdefault(rel, set())
        for parts in references(f, text):
            target = MACROS.get(parts[0]) if len(parts) == 1 else None
            target = target or str(file_of(parts).relative_to(SRC))
            if target != rel:
                targets.add(target)

    problems = []

    def room(rel: str) -> str:
        return rel.split("/")[0].removesuffix(".rs")

    rooms: dict[str, set[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            if room(a) != room(b):
                rooms.setdefault(room(a), set()).add(room(b))

    for label, graph in (("file", edges), ("room", rooms)):
        for cycle in cycles(graph):
            if label == "file" and all(f.endswith("mod.rs") or "/" not in f for f in cycle) and len(cycle) == 1:
                continue
            problems.append(f"import cycle between {label}s: {' -> '.join(cycle + [cycle[0]])}")

    for a, bs in edges.items():
        if any(room(b) == "http" for b in bs) and room(a) != "http" and a != "lib.rs":
            problems.append(f"{a} imports the HTTP layer (only lib.rs may)")

    for rel, text in texts.items():
        if rel not in BINDINGS and re.search(r"\benv\.(d1|kv|durable_object|bucket|queue)\s*\(", text):
            problems.append(f"{rel} names a binding outside bindings.rs")
        if rel not in SETTINGS and re.search(r"\benv\.(secret|var)\s*\(", text):
            problems.append(f"{rel} reads a setting outside config.rs")
        allowed = {"lib.rs", "state.rs"} | BINDINGS | SETTINGS | DURABLE_OBJECTS
        if rel not in allowed and re.search(r"\bEnv\b", text):
            problems.append(f"{rel} takes an Env outside the entry points")

    if "--dot" in sys.argv:
        print("digraph rooms {")
        for a in sorted(rooms):
            for b in sorted(rooms[a]):
                print(f'  "{a}" -> "{b}";')
        print("}")
    else:
        for a in sorted(rooms):
            print(f"{a:12} -> {', '.join(sorted(rooms[a]))}")
    for p in problems:
        print("PROBLEM:", p)
    print(f"{len(files)} files, {sum(len(b) for b in edges.values())} file imports, {len(problems)} problem(s)")
    return 1 if problems else 0


def cycles(graph: dict[str, set[str]]):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out


if __name__ == "__main__":
    sys.exit(main())
