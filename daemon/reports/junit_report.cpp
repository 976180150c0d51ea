#include "daemon/reports/junit_report.h"

#include <cstdio>
#include <ctime>
#include <map>
#include <sstream>

namespace lpd::daemon {
namespace {

/// pytest's mapping: "dir/test_x.py::TestC::test_a[1]" -> classname
/// "dir.test_x.TestC", name "test_a[1]". A native test id "Suite.Test" has
/// no "::" and splits at its last dot.
std::pair<std::string, std::string> class_and_name(const std::string& nodeid) {
  const auto sep = nodeid.rfind("::");
  if (sep == std::string::npos) {
    const auto dot = nodeid.rfind('.');
    if (dot == std::string::npos) return {"", nodeid};
    return {nodeid.substr(0, dot), nodeid.substr(dot + 1)};
  }
  std::string path = nodeid.substr(0, sep);
  std::string name = nodeid.substr(sep + 2);
  std::string classname;
  std::string file = path.substr(0, path.find("::"));
  if (file.size() > 3 && file.substr(file.size() - 3) == ".py") file.resize(file.size() - 3);
  for (char& c : file)
    if (c == '/') c = '.';
  classname = file;
  const auto rest = path.find("::");
  if (rest != std::string::npos) {
    std::string classes = path.substr(rest + 2);
    std::size_t pos;
    while ((pos = classes.find("::")) != std::string::npos) classes.replace(pos, 2, ".");
    classname += "." + classes;
  }
  return {classname, name};
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", s);
  return buf;
}

std::string iso_time(double t) {
  const std::time_t secs = static_cast<std::time_t>(t);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "#x" + std::to_string(c);  // as pytest's bin_xml_escape shows them
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

std::string junit_report(const std::string& suite_name, const std::vector<TestResult>& results,
                         const std::vector<Crash>& crashes, const std::string& hostname, double timestamp) {
  // Latest attempt wins; within an attempt the last message wins.
  std::map<std::string, TestResult> latest;
  std::vector<std::string> order;
  for (const auto& r : results) {
    auto it = latest.find(r.nodeid);
    if (it == latest.end()) {
      order.push_back(r.nodeid);
      latest.emplace(r.nodeid, r);
    } else if (r.attempt >= it->second.attempt) {
      it->second = r;
    }
  }
  std::map<std::string, const Crash*> crash_of;
  std::vector<const Crash*> outside;
  for (const auto& c : crashes) {
    if (c.nodeid.empty()) {
      outside.push_back(&c);
    } else {
      if (!crash_of.count(c.nodeid) && !latest.count(c.nodeid)) order.push_back(c.nodeid);
      crash_of[c.nodeid] = &c;
    }
  }

  int failures = 0, errors = 0, skipped = 0, tests = 0;
  double total = 0;
  std::ostringstream cases;
  auto crash_element = [](const Crash& c) {
    std::string message = c.reason;
    std::string body = c.traceback.empty() ? c.reason : c.traceback;
    return "<error type=\"crash\" message=\"" + xml_escape(message) + "\">" + xml_escape(body) + "</error>";
  };
  for (const auto& nodeid : order) {
    ++tests;
    const auto [classname, name] = class_and_name(nodeid);
    auto result = latest.find(nodeid);
    auto crash = crash_of.find(nodeid);
    const double duration = crash != crash_of.end() ? crash->second->duration
                                                    : (result != latest.end() ? result->second.duration : 0);
    total += duration;
    cases << "    <testcase classname=\"" << xml_escape(classname) << "\" name=\"" << xml_escape(name)
          << "\" time=\"" << seconds(duration) << "\">";
    if (crash != crash_of.end() && (result == latest.end() || result->second.attempt <= crash->second->attempt)) {
      ++errors;
      cases << crash_element(*crash->second);
    } else if (result != latest.end()) {
      const auto& r = result->second;
      if (r.outcome == "failed") {
        ++failures;
        cases << "<failure message=\"" << xml_escape(r.message) << "\">" << xml_escape(r.message) << "</failure>";
      } else if (r.outcome == "error") {
        ++errors;
        cases << "<error message=\"" << xml_escape(r.message) << "\">" << xml_escape(r.message) << "</error>";
      } else if (r.outcome == "skipped") {
        ++skipped;
        cases << "<skipped message=\"" << xml_escape(r.message) << "\" />";
      }
    }
    cases << "</testcase>\n";
  }
  for (const Crash* c : outside) {
    ++tests;
    ++errors;
    cases << "    <testcase classname=\"lpd\" name=\"" << xml_escape(c->where + " crash (attempt " +
                                                                      std::to_string(c->attempt) + ")")
          << "\" time=\"0.000\">" << crash_element(*c) << "</testcase>\n";
  }

  std::ostringstream xml;
  xml << "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n  <testsuite name=\"" << xml_escape(suite_name)
      << "\" errors=\"" << errors << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\" tests=\""
      << tests << "\" time=\"" << seconds(total) << "\" timestamp=\"" << iso_time(timestamp) << "\" hostname=\""
      << xml_escape(hostname) << "\">\n"
      << cases.str() << "  </testsuite>\n</testsuites>\n";
  return xml.str();
}

}  // namespace lpd::daemon
