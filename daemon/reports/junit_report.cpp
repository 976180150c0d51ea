#include "daemon/reports/junit_report.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "daemon/reports/junit_names.h"
#include "daemon/reports/xml_text.h"

namespace lpd::daemon {
namespace {

struct Counts {
  int tests = 0, failures = 0, errors = 0, skipped = 0;
};

/// `s` as "%.3f" writes it (pytest's junitxml: "%.3f" % duration), the
/// same correctly rounded digits, without printf's parsing (once per test).
std::string seconds(double s) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), s < 0 || std::isnan(s) ? 0.0 : s,
                                       std::chars_format::fixed, 3);
  if (ec != std::errc()) return "0.000";  // inf: no test takes that long
  return std::string(buf, end);
}

using Attributes = std::vector<std::pair<std::string, std::string>>;

/// One child element of a <testcase>, as ElementTree writes it: "<tag a="v"
/// />" without text, "<tag a="v">text</tag>" with it.
std::string element(const std::string& tag, const Attributes& attributes, const std::optional<std::string>& text) {
  std::string out = "<" + tag;
  for (const auto& [key, value] : attributes) out += " " + key + "=\"" + xml_attribute(value) + "\"";
  if (!text) return out + " />";
  return out + ">" + xml_text(*text) + "</" + tag + ">";
}

/// Surefire's flakyError/rerunError: a run of the test that did not count,
/// with its trace in <stackTrace> (surefire-test-report-3.0.xsd).
std::string rerun_element(const std::string& tag, const std::string& message, const std::string& type,
                          const std::string& trace) {
  return "<" + tag + " message=\"" + xml_attribute(message) + "\" type=\"" + xml_attribute(type) +
         "\"><stackTrace>" + xml_text(trace) + "</stackTrace></" + tag + ">";
}

/// A <testcase> with its children; counted by the outcome element it carries.
class Testcase {
 public:
  Testcase(TestcaseName names, double time) : names_(std::move(names)), time_(time) {}

  void location(const std::string& file, std::optional<long long> line) {
    file_ = file;
    line_ = line;
  }
  /// The one element that decides the outcome: failure, error or skipped.
  void outcome(const std::string& tag, const Attributes& attributes, const std::optional<std::string>& text) {
    tag_ = tag;
    children_ += element(tag, attributes, text);
  }
  void extra(std::string xml) { extras_ += std::move(xml); }
  /// <system-out>, after every other child as the JUnit schema orders them.
  void system_out(const std::string& text) {
    if (!text.empty()) system_out_ = element("system-out", {}, text);
  }
  /// <system-err>, after <system-out>: processes the test left running
  /// and a failed command's stderr, one after the other.
  void system_err(const std::string& text) {
    if (text.empty()) return;
    if (!system_err_text_.empty() && system_err_text_.back() != '\n') system_err_text_ += '\n';
    system_err_text_ += text;
  }

  std::string xml(Counts& counts) const {
    ++counts.tests;
    if (tag_ == "failure") ++counts.failures;
    if (tag_ == "error") ++counts.errors;
    if (tag_ == "skipped") ++counts.skipped;
    // Appended in place: this runs once per test of a run (50,000 and more).
    std::string out;
    out.reserve(96 + names_.classname.size() + names_.name.size() + file_.size() + children_.size() +
                extras_.size() + system_out_.size() + system_err_text_.size());
    out += "    <testcase classname=\"";
    out += xml_attribute(names_.classname);
    out += "\" name=\"";
    out += xml_attribute(names_.name);
    out += '"';
    if (!file_.empty()) {
      out += " file=\"";
      out += xml_attribute(file_);
      out += '"';
      if (line_) {
        out += " line=\"";
        out += std::to_string(*line_);
        out += '"';
      }
    }
    out += " time=\"";
    out += seconds(time_);
    out += '"';
    if (children_.empty() && extras_.empty() && system_out_.empty() && system_err_text_.empty()) {
      out += " />\n";
      return out;
    }
    out += '>';
    out += children_;
    out += extras_;
    out += system_out_;
    if (!system_err_text_.empty()) out += element("system-err", {}, system_err_text_);
    out += "</testcase>\n";
    return out;
  }

 private:
  TestcaseName names_;
  double time_;
  std::string file_;
  std::optional<long long> line_;
  std::string tag_;
  std::string children_;
  std::string extras_;
  std::string system_out_;
  std::string system_err_text_;
};

std::string crash_body(const Crash& c) { return c.traceback.empty() ? c.reason : c.traceback; }

void add_crash(Testcase& t, const Crash& c) {
  t.outcome("error", {{"type", "crash"}, {"message", c.reason}}, crash_body(c));
}

std::string rerun_message(const Crash& c) { return c.reason + " (attempt " + std::to_string(c.attempt) + ")"; }

/// The outcome element pytest's junitxml writes for a test report, with
/// pytest's message rules (_NodeReporter.append_failure, append_error,
/// append_skipped), plus lpd's interrupted.
void add_result(Testcase& t, const TestResult& r, bool pytest) {
  std::string body = r.longrepr.empty() ? r.message : r.longrepr;
  // The external failure reason, when the shim's text does not carry it
  // already (pytest's longrepr has it as a section; a native shim's not).
  if (!r.failure_reason.empty() && body.find(r.failure_reason) == std::string::npos)
    body += (body.empty() ? "" : "\n") + std::string("external failure reason (lpd): ") + r.failure_reason;
  if (r.outcome == "passed") return;
  if (r.outcome == "failed") {
    if (r.xfail_reason) {
      // pytest writes this text as "None": _add_simple's data is None.
      t.outcome("skipped", {{"message", "xfail-marked test passes unexpectedly"}}, "None");
    } else {
      t.outcome("failure", {{"message", r.message}}, body);
    }
  } else if (r.outcome == "error") {
    std::string message = r.message;
    if (r.phase == "teardown") message = "failed on teardown with \"" + r.message + "\"";
    else if (r.phase == "setup" || pytest) message = "failed on setup with \"" + r.message + "\"";
    t.outcome("error", {{"message", message}}, body);
  } else if (r.outcome == "skipped") {
    if (r.xfail_reason) {
      t.outcome("skipped", {{"type", "pytest.xfail"}, {"message", *r.xfail_reason}}, std::nullopt);
    } else if (pytest) {
      t.outcome("skipped", {{"type", "pytest.skip"}, {"message", r.message}}, body);
    } else {
      t.outcome("skipped", {{"message", r.message}}, body.empty() ? std::nullopt : std::optional(body));
    }
  } else if (r.outcome == "interrupted") {
    std::string message = "interrupted" + (r.phase.empty() ? std::string() : " during " + r.phase);
    std::string detail = r.message;  // lpd's own says "interrupted: the run was stopped ..."
    if (detail.rfind("interrupted:", 0) == 0) detail.erase(0, detail.find_first_not_of(' ', 12));
    if (!detail.empty()) message += ": " + detail;
    t.outcome("error", {{"type", "interrupted"}, {"message", message}}, body.empty() ? message : body);
  } else {
    // handle_test_finish admits only the words above; a journal from
    // elsewhere may not: say what it held rather than call it passed.
    t.outcome("error", {{"message", "unknown outcome \"" + r.outcome + "\""}}, body);
  }
}

/// What lpd knows of one test across attempts and processes.
struct TestHistory {
  const TestResult* latest = nullptr;  // the latest attempt's last result
  std::vector<const Crash*> crashes;   // in the order they happened
};

/// A crash is settled by a later run of its test that passed (lpd marks it
/// flaky), or by any later run: one in a later attempt (a retry, an
/// isolated rerun) or a pytest-rerunfailures rerun after it.
bool superseded(const Crash& c, const TestResult* latest) {
  return c.flaky ||
         (latest && (latest->attempt > c.attempt || (latest->attempt == c.attempt && latest->reruns > 0)));
}

/// The testcase of one test: the latest run decides; the runs that did not
/// count follow as Surefire's flakyError (the test passed in the end) or
/// rerunError elements.
std::string test_xml(const TestcaseName& names, const TestHistory& h, const JunitInput& in, bool pytest,
                     Counts& counts) {
  const TestResult* r = h.latest;
  std::vector<const Crash*> live, settled;
  for (const Crash* c : h.crashes) (superseded(*c, r) ? settled : live).push_back(c);
  const double time = !live.empty() ? live.back()->duration : (r ? r->duration : 0);
  Testcase t(names, time);
  // processes this test left running, whatever its outcome.
  if (!in.system_err.empty() && (r || !h.crashes.empty())) {
    const auto err = in.system_err.find(r ? r->nodeid : h.crashes.front()->nodeid);
    if (err != in.system_err.end()) t.system_err(err->second);
  }
  if (r && in.runner != "pytest" && !r->file.empty()) t.location(r->file, r->line);  // pytest's xunit2 writes neither
  if (!live.empty()) {
    add_crash(t, *live.back());
    // A command without a shim that died of a signal: its newest output
    // (the result job_outcomes made for it) is where the crash shows most.
    if (r) {
      t.system_out(r->system_out);
      t.system_err(r->system_err);
    }
    for (const Crash* c : h.crashes)
      if (c != live.back()) t.extra(rerun_element("rerunError", rerun_message(*c), "crash", crash_body(*c)));
    return t.xml(counts);
  }
  if (r) {
    add_result(t, *r, pytest);
    t.system_out(r->system_out);  // the test's helper log lines
    t.system_err(r->system_err);  // a failed command's stderr, kept apart
  }
  const bool flaky = !r || r->outcome == "passed";
  for (const Crash* c : settled)
    t.extra(rerun_element(flaky ? "flakyError" : "rerunError", rerun_message(*c), "crash", crash_body(*c)));
  return t.xml(counts);
}

/// A failure outside tests (session.error): pytest's own testcase for a
/// collection error (append_collect_error), else one named for the phase.
std::string session_error_xml(const TestResult& e, const JunitInput& in, Counts& counts) {
  const std::string body = e.longrepr.empty() ? e.message : e.longrepr;
  if (e.phase == "collection" && !e.nodeid.empty()) {
    Testcase t(pytest_testcase_name(e.nodeid), 0);
    t.outcome("error", {{"message", "collection failure"}}, body);
    return t.xml(counts);
  }
  Testcase t({in.suite_name, e.phase}, e.duration);
  std::string message = e.phase + " failure";
  if (!e.message.empty()) message += ": " + e.message;
  t.outcome("error", {{"message", message}}, body.empty() ? message : body);
  return t.xml(counts);
}

std::string outside_crash_xml(const Crash& c, const JunitInput& in, Counts& counts) {
  std::string name = (c.phase.empty() ? (c.where.empty() ? "session" : c.where) : c.phase) + " crash";
  if (c.attempt > 1) name += " (attempt " + std::to_string(c.attempt) + ")";
  Testcase t({in.suite_name, name}, c.duration);
  add_crash(t, c);
  return t.xml(counts);
}

bool early(const std::string& phase) { return phase == "collection" || phase == "sessionstart"; }

}  // namespace

std::string junit_report(const JunitInput& in) {
  const bool pytest = in.runner == "pytest" && in.tests_reported;
  // Keyed by views of the nodeids in `in`, which outlives this call: a
  // report of 50,000 tests copied and compared every nodeid several times.
  // Each test's history in first-seen order; the map only finds its slot.
  std::unordered_map<std::string_view, std::size_t> tests;
  tests.reserve(in.results.size() + in.crashes.size());
  std::vector<std::pair<std::string_view, TestHistory>> order;
  order.reserve(in.results.size());
  auto history = [&](std::string_view nodeid) -> TestHistory& {
    auto [it, added] = tests.try_emplace(nodeid, order.size());
    if (added) order.emplace_back(nodeid, TestHistory{});
    return order[it->second].second;
  };
  // One testcase per failure outside tests: the same one again in a retry
  // is one (the latest attempt's).
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> error_index;
  std::vector<const TestResult*> errors;
  for (const auto& r : in.results) {
    if (is_session_phase(r.phase)) {
      auto [it, added] = error_index.try_emplace({r.phase, r.nodeid, r.message}, errors.size());
      if (added) errors.push_back(&r);
      else if (r.attempt >= errors[it->second]->attempt) errors[it->second] = &r;
      continue;
    }
    TestHistory& h = history(r.nodeid);
    if (!h.latest || r.attempt >= h.latest->attempt) h.latest = &r;
  }
  std::vector<const Crash*> outside;
  for (const auto& c : in.crashes) {
    if (c.nodeid.empty()) outside.push_back(&c);
    else history(c.nodeid).crashes.push_back(&c);
  }
  auto names_of = [&](std::string_view nodeid, const TestHistory& h) -> TestcaseName {
    // A command without tests: its one testcase is named after it.
    if (!in.tests_reported) return {in.suite_name, std::string(nodeid)};
    if (h.latest && !h.latest->name.empty()) return {h.latest->classname, h.latest->name};
    return testcase_name_of(nodeid, in.runner, in.suite_name);
  };

  Counts counts;
  std::string cases;
  cases.reserve(in.results.size() * 160);
  for (const TestResult* e : errors)
    if (early(e->phase)) cases += session_error_xml(*e, in, counts);
  for (const Crash* c : outside)
    if (c->where == "collection") cases += outside_crash_xml(*c, in, counts);
  for (const auto& [nodeid, h] : order) cases += test_xml(names_of(nodeid, h), h, in, pytest, counts);
  // Collected, never reported: each once, after those that ran.
  for (const auto& nodeid : in.collected) {
    if (!tests.try_emplace(nodeid, order.size()).second) continue;  // ran, or listed already
    Testcase t(testcase_name_of(nodeid, in.runner, in.suite_name), 0);
    t.outcome("skipped", {{"type", "lpd.notrun"}, {"message", in.not_run_reason}}, std::nullopt);
    cases += t.xml(counts);
  }
  for (const TestResult* e : errors)
    if (!early(e->phase)) cases += session_error_xml(*e, in, counts);
  for (const Crash* c : outside)
    if (c->where != "collection") cases += outside_crash_xml(*c, in, counts);
  if (!in.results_missing.empty()) {
    Testcase t({in.suite_name, "results not kept"}, 0);
    t.outcome("error", {{"message", in.results_missing}}, in.results_missing);
    cases += t.xml(counts);
  }

  // The head, then the testcases appended once (not through a stream,
  // which copied the megabytes twice more).
  std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n  <testsuite name=\"" +
                    xml_attribute(in.suite_name) + "\" errors=\"" + std::to_string(counts.errors) +
                    "\" failures=\"" + std::to_string(counts.failures) + "\" skipped=\"" +
                    std::to_string(counts.skipped) + "\" tests=\"" + std::to_string(counts.tests) + "\" time=\"" +
                    seconds(in.ended_at - in.started_at) + "\" timestamp=\"" + iso_timestamp(in.started_at) +
                    "\" hostname=\"" + xml_attribute(in.hostname) + "\">\n";
  constexpr std::string_view kTail = "  </testsuite>\n</testsuites>\n";
  xml.reserve(xml.size() + cases.size() + kTail.size());
  xml += cases;
  xml += kTail;
  return xml;
}

std::string never_run_reason(bool stopped, std::optional<int> exit_code, std::optional<int> signal,
                             const std::vector<Crash>& crashes) {
  // A process that died while lpd was away took its unsent results with
  // it: the tests it ran meanwhile have none, and "not run" would be false.
  for (const auto& c : crashes)
    if (results_lost_with(c))
      return "result unknown: a test process crashed while lpd was restarting (" + c.reason +
             "), and the results it had not sent yet were lost with it: this test may have run";
  if (stopped) return "not run: the run was stopped";
  if (!crashes.empty()) return "not run: a test process crashed (" + crashes.back().reason + ")";
  if (signal) return "not run: the command was killed by " + signal_name(*signal);
  if (exit_code && *exit_code != 0)
    return "not run: the command exited with code " + std::to_string(*exit_code) + " before running them";
  return "not run: the command ended before running them";
}

std::string iso_timestamp(double t) {
  // Whole microseconds, rounded as Python's fromtimestamp rounds them.
  const long long micros = std::llround(t * 1e6);
  long long secs = micros / 1000000;
  long long frac = micros % 1000000;
  if (frac < 0) frac += 1000000, --secs;
  const std::time_t whole = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::localtime_r(&whole, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac) std::snprintf(buf + n, sizeof(buf) - n, ".%06lld", frac);
  return buf;
}

}  // namespace lpd::daemon
