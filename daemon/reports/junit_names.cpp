#include "daemon/reports/junit_names.h"

#include "protocol/split.h"

namespace lpd::daemon {
namespace {

std::string file_name_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool starts_with_python(std::string_view base) { return base.rfind("python", 0) == 0; }

}  // namespace

TestcaseName pytest_testcase_name(std::string_view nodeid) {
  // Written without splitting into a vector of strings: it runs once per
  // testcase of every JUnit report. The parts are what splitting the path
  // at each "::", left to right, gives.
  const auto bracket = nodeid.find('[');
  const std::string_view path = nodeid.substr(0, bracket);
  const std::string_view params = bracket == std::string_view::npos ? std::string_view() : nodeid.substr(bracket);
  const std::size_t first_end = path.find("::");
  std::size_t last_start = 0;  // where the last part begins
  for (std::size_t at = first_end; at != std::string_view::npos; at = path.find("::", at + 2)) last_start = at + 2;
  // The file part, a dotted module: "dir/test_x.py" -> "dir.test_x".
  std::string file(path.substr(0, first_end));
  for (char& c : file)
    if (c == '/') c = '.';
  if (file.size() >= 3 && file.compare(file.size() - 3, 3, ".py") == 0) file.resize(file.size() - 3);
  TestcaseName out;
  if (first_end == std::string_view::npos) {  // one part: it is the name
    out.name = std::move(file);
    out.name += params;
    return out;
  }
  out.name.reserve(path.size() - last_start + params.size());
  out.name.append(path.substr(last_start));
  out.name.append(params);
  out.classname = std::move(file);
  // The parts between the first and the last, each after a ".".
  for (std::size_t at = first_end; at + 2 < last_start;) {
    const std::size_t next = path.find("::", at + 2);
    out.classname += '.';
    out.classname.append(path.substr(at + 2, next - (at + 2)));
    at = next;
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
  const std::string base = file_name_of(argv[0]);
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
  return file_name_of(argv[0]);
}

}  // namespace lpd::daemon
