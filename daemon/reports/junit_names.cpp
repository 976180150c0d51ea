#include "daemon/reports/junit_names.h"

#include "protocol/split.h"

namespace lpd::daemon {
namespace {

std::string basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool starts_with_python(std::string_view base) { return base.rfind("python", 0) == 0; }

}  // namespace

TestcaseName pytest_testcase_name(std::string_view nodeid) {
  const auto bracket = nodeid.find('[');
  const std::string_view path = nodeid.substr(0, bracket);
  const std::string_view params = bracket == std::string_view::npos ? std::string_view() : nodeid.substr(bracket);
  std::vector<std::string> names;
  for (const std::string_view name : protocol::split(path, "::")) names.emplace_back(name);
  std::string& file = names.front();
  for (char& c : file)
    if (c == '/') c = '.';
  if (file.size() >= 3 && file.compare(file.size() - 3, 3, ".py") == 0) file.resize(file.size() - 3);
  names.back() += params;
  TestcaseName out;
  out.name = names.back();
  for (std::size_t i = 0; i + 1 < names.size(); ++i) {
    if (i) out.classname += '.';
    out.classname += names[i];
  }
  return out;
}

TestcaseName testcase_name_of(std::string_view nodeid, std::string_view runner, std::string_view suite_name) {
  if (runner == "pytest" || nodeid.find("::") != std::string_view::npos) return pytest_testcase_name(nodeid);
  if (runner == "catch2") return {std::string(suite_name) + ".global", std::string(nodeid)};
  const auto dot = nodeid.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == nodeid.size()) return {"", std::string(nodeid)};
  return {std::string(nodeid.substr(0, dot)), std::string(nodeid.substr(dot + 1))};
}

std::string runner_of(const std::vector<std::string>& argv) {
  if (argv.empty()) return "";
  const std::string base = basename_of(argv[0]);
  if (base == "pytest" || base == "py.test" || base.rfind("pytest-", 0) == 0) return "pytest";
  if (starts_with_python(base)) {
    // python3 [-X opts...] -m pytest: the first -m names the module.
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
      if (argv[i] == "-m") return argv[i + 1] == "pytest" || argv[i + 1] == "py.test" ? "pytest" : "";
      if (argv[i] == "-X" || argv[i] == "-W") {
        ++i;  // an option that takes a value
        continue;
      }
      if (argv[i] == "-c" || (!argv[i].empty() && argv[i][0] != '-')) return "";  // a script, not a module
    }
  }
  return "";
}

std::string suite_name_for(const std::vector<std::string>& argv, std::string_view runner) {
  if (runner == "pytest") return "pytest";
  if (runner == "gtest") return "AllTests";
  if (argv.empty()) return "lpd";
  return basename_of(argv[0]);
}

}  // namespace lpd::daemon
