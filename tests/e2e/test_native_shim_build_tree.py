"""Issue 18 (h18docs): the native shim is usable straight from a build
tree, without installing: a tiny consumer project finds it with CMake's
find_package(lpd_shim) (the exported targets file next to the config in
<build>/shim) and with pkg-config (<build>/shim/lpd_shim-uninstalled.pc),
builds, and runs without LD_LIBRARY_PATH; and the same consumer against an
install of the shim. No daemon: with LPD_SOCKET unset the shim answers
"disabled", which is what the consumers print."""

import os
import re
import shlex
import shutil
import subprocess

import pytest

from lpd_harness import build_is_sanitized, short_tempdir

BUILD_DIR = os.path.abspath(os.environ.get(
    "LPD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "default")))
SHIM_BUILD_DIR = os.path.join(BUILD_DIR, "shim")


# A sanitized liblpd_shim needs the sanitizer's runtime linked into the
# consumer first; a plain consumer is what this is about.
pytestmark = pytest.mark.skipif(build_is_sanitized(BUILD_DIR), reason="sanitizer build: consumers would need -fsanitize too")

C_CONSUMER = r"""
#include <stdio.h>
#include <lpd_shim.h>

int main(void) {
  char id[17];
  int status = lpd_shim_connect_from_env();
  printf("c: %s %u\n", lpd_shim_status_name(status), (unsigned)lpd_shim_new_pause_id(id, sizeof id));
  return status == LPD_SHIM_DISABLED ? 0 : 1;
}
"""

CXX_CONSUMER = r"""
#include <cstdio>
#include <lpd_shim.hpp>

int main() {
  const lpd::shim::Decision d = lpd::shim::checkpoint("from the build tree");
  std::printf("c++: %s %zu\n", lpd_shim_status_name(d.status), lpd::shim::new_pause_id().size());
  return d.status == LPD_SHIM_DISABLED ? 0 : 1;
}
"""

CMAKE_PROJECT = """
cmake_minimum_required(VERSION 3.16)
project(lpd_shim_consumer C CXX)
find_package(lpd_shim REQUIRED CONFIG)
add_executable(c_consumer main.c)
target_link_libraries(c_consumer PRIVATE lpd::shim)
add_executable(cxx_consumer main.cpp)
set_target_properties(cxx_consumer PROPERTIES CXX_STANDARD 17)
target_link_libraries(cxx_consumer PRIVATE lpd::shim_static)
"""


def consumer_env():
    env = dict(os.environ)
    for name in ("LPD_SOCKET", "LPD_RUN_ID", "LPD_CHECKPOINT_MOCK", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH",
                 "CMAKE_PREFIX_PATH", "PKG_CONFIG_DISABLE_UNINSTALLED"):
        env.pop(name, None)
    return env


def run(argv, cwd, env=None, timeout=300):
    proc = subprocess.run(argv, cwd=cwd, env=env or consumer_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def project():
    directory = short_tempdir()
    with open(os.path.join(directory, "main.c"), "w") as f:
        f.write(C_CONSUMER)
    with open(os.path.join(directory, "main.cpp"), "w") as f:
        f.write(CXX_CONSUMER)
    with open(os.path.join(directory, "CMakeLists.txt"), "w") as f:
        f.write(CMAKE_PROJECT)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_build_tree_holds_a_config_a_targets_file_and_an_uninstalled_pc():
    names = set(os.listdir(SHIM_BUILD_DIR))
    assert {"lpd_shimConfig.cmake", "lpd_shimConfigVersion.cmake", "lpd_shim_targets.cmake",
            "lpd_shim-uninstalled.pc", "liblpd_shim.so", "liblpd_shim.a"} <= names, sorted(names)
    # The relocatable .pc for an install lives apart: its paths are only true once installed.
    assert "lpd_shim.pc" not in names


def test_find_package_from_the_build_tree_builds_and_runs_a_consumer(project):
    build = os.path.join(project, "build")
    run(["cmake", "-S", project, "-B", build, f"-DCMAKE_PREFIX_PATH={SHIM_BUILD_DIR}"], project)
    run(["cmake", "--build", build], project)
    assert run([os.path.join(build, "c_consumer")], project) == "c: disabled 16\n"
    assert run([os.path.join(build, "cxx_consumer")], project) == "c++: disabled 16\n"


def test_pkg_config_from_the_build_tree_gives_paths_that_exist(project):
    env = consumer_env()
    env["PKG_CONFIG_PATH"] = SHIM_BUILD_DIR
    cflags = run(["pkg-config", "--cflags", "lpd_shim"], project, env).split()
    libs = run(["pkg-config", "--libs", "lpd_shim"], project, env).split()
    dirs = [flag[2:] for flag in cflags + libs if flag.startswith(("-I", "-L"))]
    dirs += [flag.split(",", 2)[2] for flag in libs if flag.startswith("-Wl,-rpath,")]
    assert len(dirs) == 3, (cflags, libs)
    for directory in dirs:
        assert os.path.isdir(directory), directory
    assert any(os.path.isfile(os.path.join(d, "lpd_shim.h")) for d in dirs)
    assert any(os.path.isfile(os.path.join(d, "liblpd_shim.so")) for d in dirs)
    assert re.search(r"^\d+\.\d+", run(["pkg-config", "--modversion", "lpd_shim"], project, env))

    program = os.path.join(project, "c_consumer")
    run(["cc", "-std=c99", "-o", program, os.path.join(project, "main.c")] + cflags + libs, project, env)
    # No LD_LIBRARY_PATH: the uninstalled .pc's rpath finds the library.
    assert run([program], project) == "c: disabled 16\n"


def test_an_install_of_the_shim_serves_the_same_consumer(project):
    """The install side, for comparison: `cmake --install <build>/shim` into
    a prefix; find_package through CMAKE_PREFIX_PATH, pkg-config through
    the relocatable lpd_shim.pc (paths found from the .pc file's place)."""
    prefix = os.path.join(project, "prefix")
    run(["cmake", "--install", SHIM_BUILD_DIR, "--prefix", prefix], project)
    build = os.path.join(project, "build")
    run(["cmake", "-S", project, "-B", build, f"-DCMAKE_PREFIX_PATH={prefix}"], project)
    run(["cmake", "--build", build], project)
    assert run([os.path.join(build, "c_consumer")], project) == "c: disabled 16\n"
    assert run([os.path.join(build, "cxx_consumer")], project) == "c++: disabled 16\n"

    # lib/ or lib/<multiarch>/ (GNUInstallDirs, by the prefix lpd was configured with)
    pc_dirs = [d for d, _, files in os.walk(prefix) if "lpd_shim.pc" in files]
    assert len(pc_dirs) == 1, pc_dirs
    env = consumer_env()
    env["PKG_CONFIG_PATH"] = pc_dirs[0]
    flags = run(["pkg-config", "--cflags", "--libs", "lpd_shim"], project, env).split()
    include_dirs = [flag[2:] for flag in flags if flag.startswith("-I")]
    lib_dirs = [flag[2:] for flag in flags if flag.startswith("-L")]
    assert len(include_dirs) == 1 and len(lib_dirs) == 1, flags
    for directory in include_dirs + lib_dirs:
        assert os.path.realpath(directory).startswith(os.path.realpath(prefix) + os.sep), flags
    assert os.path.isfile(os.path.join(include_dirs[0], "lpd_shim.h"))
    assert os.path.isfile(os.path.join(lib_dirs[0], "liblpd_shim.so"))
    program = os.path.join(project, "c_consumer")
    run(["cc", "-std=c99", "-o", program, os.path.join(project, "main.c")] + flags, project, env)
    # An installed .pc adds no rpath: outside the system's directories the loader is told.
    run_env = consumer_env()
    run_env["LD_LIBRARY_PATH"] = lib_dirs[0]
    assert run([program], project, run_env) == "c: disabled 16\n"
