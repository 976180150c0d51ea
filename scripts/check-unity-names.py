#!/usr/bin/env python3
"""Checks that names private to one source file are unique within the files
compiled together: the build compiles each target's sources in unity batches
(CMakeLists.txt, LPD_UNITY_BUILD), where two files' anonymous namespaces are
one, so a second `write_all` is a redefinition, or worse an overload that
quietly takes the other file's calls.

Usage: scripts/check-unity-names.py [SOURCE_DIR]
Prints every clash as `file:line: message` and exits 1, or prints a one-line
summary and exits 0.

What counts as private: what a .cpp file declares at the top level of an
anonymous namespace (functions, types, constants, variables, aliases), and
its namespace-scope `using NAME = ...;` aliases and `static` functions and
variables. A whole target as one batch (`cmake -DLPD_UNITY_BATCH=0`) is the
compiler's own check; this one is quick enough for every test run. Files
are grouped by where their target takes them from (GROUPS below); a clash
across groups is no clash.
"""
import os
import re
import sys

# Source folders whose .cpp files may share a unity batch (one target, or
# targets whose batches the layout could merge).
GROUPS = ["daemon", "client", "protocol", "shim", "tests/unit"]  # fuzz/, bench/: one file a program

DECLARATION = [
    # struct Foo {, class Foo :, enum class Foo {
    re.compile(r"^(?:struct|class|enum class|enum|union)\s+(\w+)\s*[:{;]"),
    # using Foo = ...;
    re.compile(r"^using\s+(\w+)\s*="),
    # constexpr ... kName = / {, const ... kName =, a variable with an initialiser
    re.compile(r"^(?:static\s+|inline\s+)?(?:constexpr|const)\s+[\w:<>,\s\*&]+?\b(\w+)\s*(?:\[[^\]]*\])?\s*(?:=|\{)"),
    # a function definition or declaration: return type, name, (
    re.compile(r"^(?:\[\[\w+\]\]\s*)?(?:static\s+|inline\s+|constexpr\s+)*"
               r"(?!return\b|if\b|for\b|while\b|switch\b|else\b|case\b|namespace\b|using\b|template\b)"
               r"[\w:<>,\*&]+(?:\s+[\w:<>,\*&]+)*?\s+[\*&]*(\w+)\s*\("),
]


def private_names(path):
    """(name, line, alias text or None) of what `path` declares privately
    (see the docstring): the same alias twice is no clash."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    found = []
    depth = 0          # brace depth
    anon_depths = []   # depths at which an anonymous namespace's body starts
    named_depths = []  # depths of named namespace bodies
    in_comment = False
    for number, raw in enumerate(lines, 1):
        line = raw
        if in_comment:
            end = line.find("*/")
            if end < 0:
                continue
            line = line[end + 2:]
            in_comment = False
        line = re.sub(r"//.*", "", line)
        line = re.sub(r"/\*.*?\*/", "", line)
        if "/*" in line:
            line = line[:line.index("/*")]
            in_comment = True
        stripped = line.strip()
        # Only a line that starts at the body's own level (no indent) is a
        # declaration of that body: the project's namespaces are not indented.
        at_top = line[:1] not in (" ", "\t") and stripped
        top_of_anon = anon_depths and depth == anon_depths[-1]
        top_of_named = (not anon_depths) and (depth == 0 or (named_depths and depth == named_depths[-1]))
        if at_top and not stripped.startswith("#"):
            if top_of_anon:
                for pattern in DECLARATION:
                    m = pattern.match(stripped)
                    if m:
                        found.append((m.group(1), number, stripped if pattern is DECLARATION[1] else None))
                        break
            elif top_of_named:
                m = DECLARATION[1].match(stripped)  # a namespace-scope alias
                if not m and stripped.startswith("static "):
                    for pattern in (DECLARATION[2], DECLARATION[3]):
                        m = pattern.match(stripped)
                        if m:
                            break
                if m:
                    found.append((m.group(1), number, stripped if m.re is DECLARATION[1] else None))
        # Braces, outside string and character literals.
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
        code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", code)
        opens_anon = re.match(r"^\s*namespace\s*\{", code)
        opens_named = re.match(r"^\s*namespace\s+[\w:]+\s*\{", code)
        for ch in code:
            if ch == "{":
                depth += 1
            elif ch == "}":
                if anon_depths and depth == anon_depths[-1]:
                    anon_depths.pop()
                elif named_depths and depth == named_depths[-1]:
                    named_depths.pop()
                depth -= 1
        if opens_anon:
            anon_depths.append(depth)
        elif opens_named:
            named_depths.append(depth)
    return found


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    clashes = 0
    files = 0
    for group in GROUPS:
        top = os.path.join(root, group)
        if not os.path.isdir(top):
            continue
        seen = {}  # name -> (file, line, alias text) of its first private declaration
        for folder, dirs, names in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in ("build", "corpus", "__pycache__"))
            for name in sorted(names):
                if not name.endswith(".cpp"):
                    continue
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root)
                files += 1
                for private, line, alias in sorted(set(private_names(path)), key=lambda t: (t[0], t[1])):
                    if private in seen and seen[private][0] != rel and (alias is None or alias != seen[private][2]):
                        first, first_line, _ = seen[private]
                        print(f"{rel}:{line}: '{private}' is private to this file and to {first}:{first_line}, "
                              f"which may share its unity batch: give one of them another name (or share one)")
                        clashes += 1
                    else:
                        seen.setdefault(private, (rel, line, alias))
    if clashes:
        return 1
    print(f"check-unity-names: {files} source files, no file-private name twice in a group")
    return 0


if __name__ == "__main__":
    sys.exit(main())
