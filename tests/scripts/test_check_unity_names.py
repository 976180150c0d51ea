"""scripts/check-unity-names.py: names private to one file are unique among
the files a unity batch may put together (CMakeLists.txt, LPD_UNITY_BUILD).

Each case copies daemon/ to a temporary tree, plants one file and runs the
real script on it, so the check is shown to fail where it must, not only to
pass on today's tree.
"""
import pytest

from conftest import SOURCE, run_check


def run(tree):
    return run_check("check-unity-names.py", tree)


def plant(tree, relative, text):
    path = tree / "daemon" / relative
    path.write_text(text)
    return f"daemon/{relative}"


def test_the_tree_has_no_file_private_name_twice():
    r = run(SOURCE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no file-private name twice" in r.stdout


@pytest.mark.parametrize("declaration, name", [
    ("int write_all(int fd, std::string_view bytes) { return fd; }", "write_all"),
    ("[[noreturn]] void throw_errno(const std::string& what) { throw what; }", "throw_errno"),
    ("struct Row {\n  int a;\n};", "Row"),
    ("constexpr std::string_view kSegmentSuffix = \".x\";", "kSegmentSuffix"),
    ("enum class Mode { kA, kB };", "Mode"),
])
def test_a_second_file_private_name_in_an_anonymous_namespace_fails(tree, declaration, name):
    # Only names private to a file count: the same one in two new files.
    first = plant(tree, "core/planted_a.cpp", f"namespace lpd::daemon {{\nnamespace {{\n\n{declaration}\n\n}}  // namespace\n}}\n")
    second = plant(tree, "os/planted_b.cpp", f"namespace lpd::daemon {{\nnamespace {{\n\n{declaration}\n\n}}  // namespace\n}}\n")
    r = run(tree)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"'{name}' is private to this file and to" in r.stdout, r.stdout
    assert first in r.stdout and second in r.stdout, r.stdout


def test_a_namespace_scope_alias_and_a_static_count_too(tree):
    plant(tree, "core/planted_a.cpp", "namespace lpd::daemon {\n\nusing S = int;\nstatic int helper(int x) { return x; }\n\n}\n")
    plant(tree, "os/planted_b.cpp", "namespace lpd::daemon {\n\nusing S = long;\nstatic int helper(int y) { return y; }\n\n}\n")
    r = run(tree)
    assert r.returncode == 1
    assert "'S' is private" in r.stdout and "'helper' is private" in r.stdout, r.stdout


def test_public_names_members_and_the_same_alias_twice_are_no_clash(tree):
    text = ("namespace lpd::daemon {\n\nusing ojson = nlohmann::ordered_json;\n\nint shared_public(int x) { return x; }\n\n"
            "namespace {\n\nstruct Local {\n  int write_all(int fd) { return fd; }\n};\n\n}  // namespace\n}\n")
    plant(tree, "core/planted_a.cpp", text.replace("Local", "LocalA"))
    plant(tree, "os/planted_b.cpp", text.replace("Local", "LocalB"))
    r = run(tree)
    assert r.returncode == 0, r.stdout
