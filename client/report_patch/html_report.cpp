#include "client/report_patch/html_report.h"

#include <cctype>
#include <cstdio>
#include <stdexcept>
#include <unordered_set>

#include "client/report_patch/html_text.h"

namespace lpd::client::report_patch {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kAttribute = "data-jsonblob";

/// "5 ms" / "00:01:02", as pytest-html's duration column shows them.
std::string duration_text(double seconds) {
  char buf[32];
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%d ms", static_cast<int>(seconds * 1000));
  } else {
    const long s = static_cast<long>(seconds);
    std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  }
  return buf;
}

ojson report_entry(const CrashedTest& c) {
  const std::string id = html_escape(c.nodeid);
  return ojson{
      {"extras", ojson::array()},
      {"result", "Failed"},
      {"testId", c.nodeid},
      {"duration", c.duration},
      {"resultsTableRow",
       ojson::array({"<td class=\"col-result\">Failed</td>", "<td class=\"col-testId\">" + id + "</td>",
                     "<td class=\"col-duration\">" + duration_text(c.duration) + "</td>",
                     "<td class=\"col-links\"></td>"})},
      {"log", html_escape(crash_text(c))},
  };
}

/// Adds `n` to the number right after `marker` (the first one in `html`),
/// e.g. `class="failed">` 3 Failed. Returns where the number ends, or npos
/// when there is none.
std::size_t add_to_count_after(std::string& html, std::string_view marker, std::size_t n) {
  const auto at = html.find(marker);
  if (at == std::string::npos) return std::string::npos;
  std::size_t digits = at + marker.size();
  while (digits < html.size() && (html[digits] == ' ' || html[digits] == '\n')) ++digits;
  std::size_t end = digits;
  while (end < html.size() && end - digits < 12 && std::isdigit(static_cast<unsigned char>(html[end]))) ++end;
  if (end == digits || end - digits >= 12) return std::string::npos;
  const std::string value = std::to_string(std::stoull(html.substr(digits, end - digits)) + n);
  html.replace(digits, end - digits, value);
  return digits + value.size();
}

void update_summary(std::string& html, std::size_t added) {
  add_to_count_after(html, "<span class=\"failed\">", added);
  // "1 test took 00:00:01." becomes "2 tests took ...".
  if (const auto end = add_to_count_after(html, "class=\"run-count\">", added);
      end != std::string::npos && html.compare(end, 6, " test ") == 0)
    html.insert(end + 5, "s");
  // A report with no failure yet has its Failed filter disabled.
  const std::string disabled = "data-test-result=\"failed\" disabled";
  if (const auto at = html.find(disabled); at != std::string::npos)
    html.erase(at + disabled.size() - std::string_view(" disabled").size(), std::string_view(" disabled").size());
}

std::string new_report(const std::string& title, const ojson& blob, const std::vector<CrashedTest>& crashed) {
  std::string rows;
  for (const auto& c : crashed)
    rows += "<tbody class=\"results-table-row\"><tr class=\"collapsible\"><td class=\"col-result\">Failed</td>"
            "<td class=\"col-testId\">" + html_escape(c.nodeid) + "</td><td class=\"col-duration\">" +
            duration_text(c.duration) + "</td><td class=\"col-links\"></td></tr><tr class=\"extras-row\">"
            "<td class=\"extra\" colspan=\"4\"><div class=\"log\">" + html_escape(crash_text(c)) +
            "</div></td></tr></tbody>\n";
  const std::string n = std::to_string(crashed.size());
  return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\"/>\n<title id=\"head-title\">" +
         html_escape(title) + "</title>\n</head>\n<body>\n<h1 id=\"title\">" + html_escape(title) +
         "</h1>\n<p>Written by lpd from its crash records: the tests below crashed.</p>\n<p class=\"run-count\">" + n +
         (crashed.size() == 1 ? " test took" : " tests took") + " 00:00:00.</p>\n<div class=\"summary\">"
         "<span class=\"failed\">" + n + " Failed,</span></div>\n<table id=\"results-table\">\n<thead><tr>"
         "<th>Result</th><th>Test</th><th>Duration</th><th>Links</th></tr></thead>\n" + rows +
         "</table>\n<div id=\"data-container\" data-jsonblob=\"" +
         html_escape(blob.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) +
         "\"></div>\n</body>\n</html>\n";
}

}  // namespace

AttributeSpan find_jsonblob(const std::string& html) {
  std::optional<AttributeSpan> found;
  for (std::size_t at = html.find(kAttribute); at != std::string::npos; at = html.find(kAttribute, at + 1)) {
    // An attribute: after whitespace inside a tag, then `=` and a quote.
    if (at == 0 || !std::isspace(static_cast<unsigned char>(html[at - 1]))) continue;
    std::size_t p = at + kAttribute.size();
    while (p < html.size() && std::isspace(static_cast<unsigned char>(html[p]))) ++p;
    if (p >= html.size() || html[p] != '=') continue;
    ++p;
    while (p < html.size() && std::isspace(static_cast<unsigned char>(html[p]))) ++p;
    if (p >= html.size() || (html[p] != '"' && html[p] != '\'')) continue;
    const char quote = html[p];
    const auto close = html.find(quote, p + 1);
    if (close == std::string::npos) throw std::runtime_error("its data-jsonblob attribute is not closed");
    if (found) throw std::runtime_error("it has more than one data-jsonblob attribute");
    found = AttributeSpan{p + 1, close - p - 1};
    at = close;
  }
  if (!found) throw std::runtime_error("no data-jsonblob attribute: not a pytest-html 4 report");
  return *found;
}

PatchResult patch_html_report(const std::optional<std::string>& existing, const std::vector<CrashedTest>& crashed,
                              const std::string& title) {
  PatchResult result;
  if (!existing) {
    ojson tests = ojson::object();
    for (const auto& c : crashed) {
      if (tests.contains(c.nodeid)) continue;
      tests[c.nodeid] = ojson::array({report_entry(c)});
      ++result.added;
    }
    const ojson blob = {{"environment", ojson::object()},
                        {"tests", tests},
                        {"renderCollapsed", ojson::array({"passed"})},
                        {"initialSort", "result"},
                        {"title", title}};
    result.text = new_report(title, blob, crashed);
    return result;
  }
  const std::string& html = *existing;
  const AttributeSpan span = find_jsonblob(html);
  ojson blob = ojson::parse(html_unescape(std::string_view(html).substr(span.begin, span.length)), nullptr, false);
  if (blob.is_discarded() || !blob.is_object()) throw std::runtime_error("its data-jsonblob is not a JSON object");
  if (!blob.contains("tests")) blob["tests"] = ojson::object();
  ojson& tests = blob["tests"];
  std::unordered_set<std::string> present;
  if (tests.is_object()) {
    for (const auto& [nodeid, _] : tests.items()) present.insert(nodeid);
  } else if (tests.is_array()) {
    for (const auto& t : tests)
      if (t.is_object() && t.contains("testId") && t["testId"].is_string()) present.insert(t["testId"].get<std::string>());
  } else {
    throw std::runtime_error("its data-jsonblob's \"tests\" is neither an object nor a list");
  }
  for (const auto& c : crashed) {
    if (!present.insert(c.nodeid).second) continue;
    if (tests.is_object())
      tests[c.nodeid] = ojson::array({report_entry(c)});
    else
      tests.push_back(report_entry(c));
    ++result.added;
  }
  if (result.added == 0) return result;
  std::string out = html.substr(0, span.begin);
  out += html_escape(blob.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  out.append(html, span.begin + span.length, std::string::npos);
  // The escaped blob holds no quote or '<': the markers can only match the page's own summary.
  update_summary(out, result.added);
  result.text = std::move(out);
  return result;
}

}  // namespace lpd::client::report_patch
