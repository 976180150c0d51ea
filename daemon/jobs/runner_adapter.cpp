#include "daemon/jobs/runner_adapter.h"

#include "protocol/name_table.h"

#include <algorithm>
#include <array>

namespace lpd::daemon {
namespace {

constexpr std::pair<Runner, std::string_view> kNames[] = {
    {Runner::kNone, "none"},     {Runner::kPytest, "pytest"}, {Runner::kGtest, "gtest"},
    {Runner::kCatch2, "catch2"}, {Runner::kNative, "native"},
};

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

/// python, python3, python3.11, pypy3: an interpreter that takes `-m`.
bool is_python(const std::string& name) {
  if (starts_with(name, "pypy")) return true;
  if (!starts_with(name, "python")) return false;
  return name.find_first_not_of("0123456789.", 6) == std::string::npos;
}

/// The index of the real command behind wrappers that only set up its
/// environment: `env [-i] [-u NAME] [K=V]...`, `uv run [--opts]`,
/// `poetry run`, `pipenv run`.
std::size_t skip_wrappers(const std::vector<std::string>& argv) {
  std::size_t i = 0;
  for (int rounds = 0; rounds < 4 && i < argv.size(); ++rounds) {
    const std::string name = basename_of(argv[i]);
    if (name == "env") {
      ++i;
      while (i < argv.size()) {
        const std::string& a = argv[i];
        if (a == "-u" || a == "--unset" || a == "-C" || a == "--chdir" || a == "-S") {
          i += 2;
        } else if (starts_with(a, "-") || a.find('=') != std::string::npos) {
          ++i;
        } else {
          break;
        }
      }
    } else if ((name == "uv" || name == "poetry" || name == "pipenv" || name == "hatch") && i + 1 < argv.size() &&
               argv[i + 1] == "run") {
      i += 2;
      while (i < argv.size() && starts_with(argv[i], "-")) ++i;  // flags without values only
    } else {
      break;
    }
  }
  return i;
}

bool is_pytest(const std::vector<std::string>& argv) {
  const std::size_t i = skip_wrappers(argv);
  if (i >= argv.size()) return false;
  const std::string name = basename_of(argv[i]);
  if (name == "pytest" || name == "py.test" || starts_with(name, "pytest-")) return true;
  if (!is_python(name)) return false;
  // python's own options before -m; -m pytest or -mpytest.
  for (std::size_t j = i + 1; j < argv.size(); ++j) {
    const std::string& a = argv[j];
    if (a == "-m") return j + 1 < argv.size() && (argv[j + 1] == "pytest" || argv[j + 1] == "py.test");
    if (a == "-mpytest") return true;
    if (a == "-X" || a == "-W") {
      ++j;
      continue;
    }
    if (!starts_with(a, "-")) return false;  // a script: not pytest
  }
  return false;
}

constexpr std::string_view kGtestFilter = "--gtest_filter=";

/// Catch2 v2 options that take a value as the next argument (Clara also
/// takes `--opt=value`, which is one argument).
constexpr std::array<std::string_view, 22> kCatch2ValueOptions = {
    "-o", "--out", "-r", "--reporter", "-n", "--name", "-x", "--abortx", "-w", "--warn", "-d",
    "--durations", "-D", "--min-duration", "-f", "--input-file", "-c", "--section", "-v", "--verbosity",
    "--order", "--rng-seed"};
constexpr std::array<std::string_view, 6> kCatch2MoreValueOptions = {
    "--use-colour", "--wait-for-keypress", "--benchmark-samples", "--benchmark-resamples",
    "--benchmark-confidence-interval", "--benchmark-warmup-time"};

bool catch2_takes_value(const std::string& arg) {
  return std::find(kCatch2ValueOptions.begin(), kCatch2ValueOptions.end(), arg) != kCatch2ValueOptions.end() ||
         std::find(kCatch2MoreValueOptions.begin(), kCatch2MoreValueOptions.end(), arg) !=
             kCatch2MoreValueOptions.end();
}

/// Splits a Catch2 test spec argument at its unescaped commas (its OR).
std::vector<std::string> catch2_filters(const std::string& spec) {
  std::vector<std::string> out(1);
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] == '\\' && i + 1 < spec.size()) {
      out.back() += spec.substr(i, 2);
      ++i;
    } else if (spec[i] == ',') {
      out.emplace_back();
    } else {
      out.back().push_back(spec[i]);
    }
  }
  return out;
}

std::vector<std::string> catch2_argv(const std::vector<std::string>& argv, const AttemptSelection& sel) {
  // argv[0], the options as they are, and the test spec (the positional
  // arguments) apart: Catch2 ANDs consecutive spec arguments into one
  // filter, and a lone "," argument starts the next (OR-ed) filter.
  std::vector<std::string> out;
  std::vector<std::string> spec;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (i == 0) {
      out.push_back(a);
    } else if (catch2_takes_value(a)) {
      out.push_back(a);
      if (i + 1 < argv.size()) out.push_back(argv[++i]);
    } else if (starts_with(a, "-")) {
      out.push_back(a);
    } else {
      spec.push_back(a);
    }
  }
  if (!sel.only.empty()) {
    out.push_back(catch2_quoted_name(sel.only));
    return out;
  }
  std::vector<std::string> exclusions;
  for (const auto& name : sel.excluded) exclusions.push_back("~" + catch2_quoted_name(name));
  // Each OR-ed filter of the spec gets every exclusion; no spec at all is
  // one filter of exclusions alone (everything else runs).
  std::vector<std::vector<std::string>> filters(1);
  for (const auto& arg : spec) {
    const auto parts = catch2_filters(arg);
    for (std::size_t p = 0; p < parts.size(); ++p) {
      if (p > 0) filters.emplace_back();
      if (!parts[p].empty()) filters.back().push_back(parts[p]);
    }
  }
  for (std::size_t f = 0; f < filters.size(); ++f) {
    if (f > 0) out.push_back(",");
    for (const auto& term : filters[f]) out.push_back(term);
    for (const auto& term : exclusions) out.push_back(term);
  }
  return out;
}

std::vector<std::string> gtest_argv(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                    const AttemptSelection& sel) {
  // GoogleTest takes the last --gtest_filter= of its argv, else $GTEST_FILTER.
  std::optional<std::string> filter;
  for (const auto& kv : env)
    if (starts_with(kv, "GTEST_FILTER=")) filter = kv.substr(13);
  std::vector<std::string> out;
  for (const auto& a : argv) {
    if (starts_with(a, kGtestFilter))
      filter = a.substr(kGtestFilter.size());
    else
      out.push_back(a);
  }
  if (!sel.only.empty()) {
    out.push_back(std::string(kGtestFilter) + sel.only);
  } else if (!sel.excluded.empty()) {
    out.push_back(std::string(kGtestFilter) + gtest_filter_without(filter.value_or(""), sel.excluded));
  } else if (filter) {
    out.push_back(std::string(kGtestFilter) + *filter);
  }
  return out;
}

}  // namespace

std::string_view to_string(Runner runner) { return protocol::name_in(kNames, runner, "none"); }

std::optional<Runner> runner_from_name(std::string_view name) {
  if (name == "googletest") return Runner::kGtest;
  if (const auto runner = protocol::value_named(kNames, name); runner && *runner != Runner::kNone) return runner;
  return std::nullopt;
}

std::string_view supported_runners_text() {
  return "pytest (recognised from argv), gtest (a --gtest_* argument, or --runner gtest), catch2 (--runner "
         "catch2), native (--runner native: a command with lpd's native shim that reads LPD_DESELECT_FILE and "
         "LPD_ONLY_NODEIDS_FILE)";
}

Runner detect_runner(const std::vector<std::string>& argv, std::optional<Runner> named) {
  if (named) return *named;
  if (is_pytest(argv)) return Runner::kPytest;
  for (std::size_t i = 1; i < argv.size(); ++i)
    if (starts_with(argv[i], "--gtest_")) return Runner::kGtest;
  return Runner::kNone;
}

std::string gtest_filter_without(const std::string& filter, const std::vector<std::string>& excluded) {
  // "POSITIVE-NEGATIVE": the first '-' splits them; an empty positive part is "*".
  const auto dash = filter.find('-');
  std::string positive = dash == std::string::npos ? filter : filter.substr(0, dash);
  std::string negative = dash == std::string::npos ? "" : filter.substr(dash + 1);
  if (positive.empty()) positive = "*";
  for (const auto& name : excluded) {
    if (name.empty()) continue;
    negative += (negative.empty() ? "" : ":") + name;
  }
  return negative.empty() ? positive : positive + "-" + negative;
}

std::string catch2_quoted_name(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '\\' || c == '"' || c == ',' || c == '[' || c == ']' || c == '*') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

std::vector<std::string> attempt_argv(Runner runner, const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env, const AttemptSelection& selection) {
  switch (runner) {
    case Runner::kPytest: {
      std::vector<std::string> out = argv;
      // Bounded: 70 crashed tests of 16 KB nodeids made an argv of 1.1 MB,
      // which the next attempt's shim sent back in run.register, a line
      // over lpd's limit (its results never reached lpd); more would pass
      // the kernel's ARG_MAX (E2BIG). Past the bound the shim alone
      // deselects them (LPD_DESELECT_FILE lists them all).
      std::size_t bytes = 0;
      for (const auto& nodeid : selection.excluded) {
        if (nodeid.empty()) continue;
        bytes += nodeid.size() + sizeof("--deselect") + 1;
        if (bytes > kMaxDeselectArgvBytes) break;
        out.push_back("--deselect");
        out.push_back(nodeid);
      }
      return out;
    }
    case Runner::kGtest:
      return gtest_argv(argv, env, selection);
    case Runner::kCatch2:
      if (selection.only.empty() && selection.excluded.empty()) return argv;
      return catch2_argv(argv, selection);
    case Runner::kNative:
    case Runner::kNone:
      break;
  }
  return argv;
}

std::string command_test_name(const std::vector<std::string>& argv) {
  if (argv.empty()) return "command";
  const std::size_t i = skip_wrappers(argv);
  const std::string name = basename_of(argv[std::min(i, argv.size() - 1)]);
  return name.empty() ? "command" : name;
}

}  // namespace lpd::daemon
