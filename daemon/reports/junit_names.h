#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace lpd::daemon {

/// The names of one JUnit <testcase>.
struct TestcaseName {
  std::string classname;
  std::string name;
};

/// pytest's mangle_test_address (_pytest/junitxml.py): the nodeid's part
/// before the first "[" split at "::", its file path turned into a dotted
/// module ("dir/test_x.py" -> "dir.test_x"), the parameters put back on the
/// last name. Returns classname (all but the last, joined by ".") and name.
/// "a/test_x.py::TestC::test_f[p::q]" -> {"a.test_x.TestC", "test_f[p::q]"};
/// a collector's nodeid "a/test_x.py" -> {"", "a.test_x"}.
TestcaseName pytest_testcase_name(std::string_view nodeid);

/// The testcase names lpd writes for a nodeid the runner did not name
/// itself. pytest nodeids (with "::") follow pytest_testcase_name; a
/// GoogleTest nodeid "Suite.Test" (also "Prefix/Suite.Test/0") splits at its
/// first dot, as gtest's XML has classname "Suite" and name "Test"; a Catch2
/// test case (any text) gets classname "<suite>.global" as Catch2's JUnit
/// reporter writes it; any other nodeid splits at its first dot, or is the
/// name alone.
TestcaseName testcase_name_of(std::string_view nodeid, std::string_view runner, std::string_view suite_name);

/// The runner of a command line when the caller does not know it: "pytest"
/// for pytest, py.test and `python -m pytest`, else "" (unknown).
std::string runner_of(const std::vector<std::string>& argv);

/// The <testsuite name> for a run: what the runner itself writes ("pytest",
/// pytest's default junit_suite_name; "AllTests" for GoogleTest, its root
/// suite in --gtest_output=xml), else the command's basename ("make",
/// "test_binary"; Catch2's JUnit reporter also names the suite after its
/// binary). `runner` as from runner_of, or the adapter's own word.
std::string suite_name_for(const std::vector<std::string>& argv, std::string_view runner);

}  // namespace lpd::daemon
