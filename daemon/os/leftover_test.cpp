#include "daemon/os/leftover_test.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace lpd::daemon {

std::optional<std::string_view> environ_value(std::string_view environ, std::string_view name, bool cut) {
  std::size_t start = 0;
  while (start < environ.size()) {
    auto end = environ.find('\0', start);
    const bool terminated = end != std::string_view::npos;
    if (!terminated) end = environ.size();
    const std::string_view entry = environ.substr(start, end - start);
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 && entry[name.size()] == '=') {
      if (!terminated && cut) return std::nullopt;
      return entry.substr(name.size() + 1);
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::string printable_utf8(std::string_view bytes, std::size_t max_bytes, char nul) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size();) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    std::size_t length = byte < 0x80 ? 1 : byte >= 0xf0 && byte <= 0xf4 ? 4 : byte >= 0xe0 && byte < 0xf0 ? 3
                                          : byte >= 0xc2 && byte < 0xe0  ? 2
                                                                         : 0;
    bool valid = length > 0 && i + length <= bytes.size();
    for (std::size_t k = 1; valid && k < length; ++k)
      valid = (static_cast<unsigned char>(bytes[i + k]) & 0xc0) == 0x80;
    if (valid && length == 3) {
      const auto second = static_cast<unsigned char>(bytes[i + 1]);
      valid = !(byte == 0xe0 && second < 0xa0) && !(byte == 0xed && second >= 0xa0);  // overlong, surrogates
    }
    if (valid && length == 4) {
      const auto second = static_cast<unsigned char>(bytes[i + 1]);
      valid = !(byte == 0xf0 && second < 0x90) && !(byte == 0xf4 && second >= 0x90);
    }
    if (!valid) length = 1;
    if (out.size() + length > max_bytes) {
      out += "...";
      break;
    }
    if (!valid)
      out += '?';
    else if (length > 1)
      out.append(bytes.substr(i, length));
    else
      out += byte == 0 ? nul : (byte < 0x20 || byte == 0x7f) ? '?' : static_cast<char>(byte);
    i += length;
  }
  return out;
}

std::optional<CurrentTest> parse_pytest_current_test(std::string_view value) {
  // The phase is the last parenthesised word: a nodeid may hold " (" itself.
  for (std::string_view phase : {"setup", "call", "teardown"}) {
    const std::string suffix = " (" + std::string(phase) + ")";
    if (value.size() <= suffix.size() || value.compare(value.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string_view nodeid = value.substr(0, value.size() - suffix.size());
    if (nodeid.size() > kMaxLeftoverNodeidBytes) return std::nullopt;
    return CurrentTest{printable_utf8(nodeid, kMaxLeftoverNodeidBytes), std::string(phase)};
  }
  return std::nullopt;
}

double start_wall_time(std::uint64_t start_ticks, long ticks_per_second, double boot_now, double real_now) {
  if (ticks_per_second <= 0) return 0;
  const double since_boot = static_cast<double>(start_ticks) / static_cast<double>(ticks_per_second);
  return real_now - (boot_now - since_boot);
}

void TestSpanBuilder::started(std::string_view worker, std::string_view nodeid, double time) {
  for (auto it = spans_.rbegin(); it != spans_.rend(); ++it) {
    if (it->worker_id != worker) continue;
    if (it->finished > time) it->finished = time;  // still open: it ended before this one began
    break;
  }
  spans_.push_back(TestSpan{std::string(worker), std::string(nodeid), time});
}

void TestSpanBuilder::finished(std::string_view worker, std::string_view nodeid, double time) {
  for (auto it = spans_.rbegin(); it != spans_.rend(); ++it) {
    if (it->worker_id != worker) continue;
    // The worker's latest test: this one (a repeated finish changes
    // nothing), or another whose finish was lost and which ended by now.
    if (it->finished > time) it->finished = time;
    return;
  }
  // The worker's first test in what lpd holds: its test.start is older than
  // that history, so it ran from some time before until now.
  TestSpan span{std::string(worker), std::string(nodeid)};
  span.finished = time;
  spans_.push_back(std::move(span));
}

std::vector<std::string> tests_running_between(const std::vector<TestSpan>& spans, double from, double to,
                                               double lag) {
  std::vector<const TestSpan*> running;
  for (const auto& span : spans)
    if (span.finished >= from && span.started - lag <= to) running.push_back(&span);
  std::stable_sort(running.begin(), running.end(),
                   [](const TestSpan* a, const TestSpan* b) { return a->started < b->started; });
  std::vector<std::string> nodeids;
  std::set<std::string_view> seen;
  for (const TestSpan* span : running)
    if (seen.insert(span->nodeid).second) nodeids.push_back(span->nodeid);
  return nodeids;
}

namespace {

std::string shown_nodeid(const std::string& nodeid) {
  return printable_utf8(nodeid, LeftProcess::kLineNodeidBytes);
}

std::string lag_text(double lag) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", lag);
  return text;
}

}  // namespace

std::string LeftProcess::line() const {
  std::string out = "pid " + std::to_string(pid) + ": " + argv + " (";
  if (tests.empty()) {
    out += "no test known";
    if (!unknown.empty()) out += ": " + unknown;
  } else if (tests.size() == 1) {
    out += "started during " + shown_nodeid(tests.front());
  } else {
    out += "started during one of: ";
    for (std::size_t i = 0; i < tests.size(); ++i) out += (i ? "; " : "") + shown_nodeid(tests[i]);
  }
  if (!tests.empty()) out += known_by == kByEnvironment ? ", " + phase : ", by its start time";
  return out + ")";
}

std::string LeftProcess::junit_line() const {
  std::string out = "lpd: this test left a process running: pid " + std::to_string(pid) + " (" + argv + ") ";
  if (known_by == kByEnvironment)
    out += "started during its " + phase + " phase (its PYTEST_CURRENT_TEST said so)";
  else
    out += "started while this test was running (by its start time)";
  out += " was still running when the command of attempt " + std::to_string(attempt) + " ended; lpd killed it.\n";
  return out;
}

void attribute_by_start_time(LeftProcess& left, const std::vector<std::string>& tests, double lag) {
  left.tests.clear();
  left.phase.clear();
  left.known_by.clear();
  if (tests.empty()) {
    left.unknown = "started outside any test, by its start time";
  } else if (tests.size() > LeftProcess::kMaxCandidates) {
    left.unknown = std::to_string(tests.size()) + " tests ran within " + lag_text(lag) + " s of its start";
  } else {
    left.tests = tests;
    left.known_by = LeftProcess::kByStartTime;
  }
}

}  // namespace lpd::daemon
