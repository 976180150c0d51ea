// h15abort (issue 15): the rules that patch crashed tests into
// pytest-json-report, pytest-html and pytest-csv reports, as
// pytest-abort-postprocess does: formats kept, missing tests added once.
#include <catch2/catch.hpp>

#include "client/report_patch/crashed_tests.h"
#include "client/report_patch/csv_report.h"
#include "client/report_patch/html_report.h"
#include "client/report_patch/html_text.h"
#include "client/report_patch/json_report.h"

using namespace lpd::client::report_patch;
using ojson = nlohmann::ordered_json;

namespace {

std::vector<CrashedTest> one_crash(std::string nodeid = "tests/test_a.py::TestX::test_crash[1]",
                                   std::string reason = "killed by SIGSEGV while running it") {
  nlohmann::json record = {{"nodeid", nodeid}, {"reason", reason}, {"duration", 1.5}, {"signal_name", "SIGSEGV"},
                           {"crash_id", 7}};
  return crashed_tests_from_records({record});
}

std::string blob_of(const std::string& html) {
  const auto span = find_jsonblob(html);
  return html_unescape(std::string_view(html).substr(span.begin, span.length));
}

}  // namespace

TEST_CASE("crash log lines: objects kept; blank, torn and foreign lines skipped and counted") {
  std::size_t skipped = 0;
  const auto records =
      crash_log_records("{\"nodeid\": \"a::t\"}\n\n  \n[1,2]\n{\"nodeid\": \"b::t\"}\r\n{\"nodeid\": \"c::", &skipped);
  REQUIRE(records.size() == 2);
  CHECK(records[1]["nodeid"] == "b::t");
  CHECK(skipped == 2);
}

TEST_CASE("crashed tests: unique trimmed nodeids in first-seen order; flaky and nodeid-less records left out") {
  const auto crashed = crashed_tests_from_records({
      {{"nodeid", " t.py::b "}, {"reason", "first"}},
      {{"nodeid", "t.py::a"}},
      {{"nodeid", "t.py::b"}, {"reason", "second"}},
      {{"nodeid", ""}, {"where", "session"}},
      {{"nodeid", 5}},
      {{"nodeid", "t.py::flaky"}, {"flaky", true}},
      nlohmann::json("not an object"),
  });
  REQUIRE(crashed.size() == 2);
  CHECK(crashed[0].nodeid == "t.py::b");
  CHECK(crashed[0].reason == "first");
  CHECK(crashed[1].nodeid == "t.py::a");
}

TEST_CASE("nodeids split the way pytest builds them") {
  const auto p = split_nodeid("pkg/tests/test_a.py::TestX::test_b[x::y]");
  CHECK(p.file == "pkg/tests/test_a.py");
  CHECK(p.module == "pkg.tests.test_a");
  CHECK(p.name == "y]");  // the last "::" part, as pytest-abort splits it, even inside a parameter id
  CHECK(split_nodeid("test_x.py").name == "test_x.py");
}

TEST_CASE("pytest-json-report: the crashed test is added as failed, every key kept, counts grown, once") {
  const std::string report =
      R"({"created": 1.5, "duration": 0.25, "exitcode": 0, "root": "/src", "environment": {"Python": "3.11"},)"
      R"( "summary": {"passed": 1, "total": 1, "collected": 1}, "collectors": [],)"
      R"( "tests": [{"nodeid": "tests/test_a.py::test_ok", "lineno": 3, "outcome": "passed"}], "warnings": []})";
  const auto first = patch_json_report(report, one_crash(), "/x", 0);
  REQUIRE(first.text);
  CHECK(first.added == 1);
  const auto j = ojson::parse(*first.text);
  std::vector<std::string> keys;
  for (const auto& [k, _] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"created", "duration", "exitcode", "root", "environment", "summary",
                                         "collectors", "tests", "warnings"});
  CHECK(j["root"] == "/src");
  CHECK(j["exitcode"] == 1);
  CHECK(j["summary"] == ojson{{"passed", 1}, {"total", 2}, {"collected", 2}, {"failed", 1}});
  REQUIRE(j["tests"].size() == 2);
  const auto& t = j["tests"][1];
  CHECK(t["nodeid"] == "tests/test_a.py::TestX::test_crash[1]");
  CHECK(t["outcome"] == "failed");
  CHECK(t["call"]["outcome"] == "failed");
  CHECK(t["call"]["duration"] == 1.5);
  CHECK(t["call"]["crash"]["message"] == "crashed: killed by SIGSEGV while running it");
  CHECK(t["metadata"]["lpd_crash"]["crash_id"] == 7);
  CHECK(t["setup"]["outcome"] == "passed");

  const auto second = patch_json_report(*first.text, one_crash(), "/x", 0);
  CHECK_FALSE(second.text);  // patching twice = once
  CHECK(second.added == 0);
}

TEST_CASE("pytest-json-report: a test already there is not added again; exit codes other than 0 are kept") {
  const std::string report = R"({"exitcode": 2, "summary": {"failed": 1, "total": 1},)"
                             R"( "tests": [{"nodeid": "t.py::c", "outcome": "failed"}]})";
  const auto crashed = crashed_tests_from_records({{{"nodeid", "t.py::c"}}, {{"nodeid", "t.py::d"}}});
  const auto r = patch_json_report(report, crashed, "/x", 0);
  REQUIRE(r.text);
  CHECK(r.added == 1);
  const auto j = ojson::parse(*r.text);
  CHECK(j["exitcode"] == 2);
  CHECK(j["summary"]["failed"] == 2);
  CHECK(j["summary"]["collected"] == 2);
}

TEST_CASE("pytest-json-report: a missing file is made with its top-level keys; indented files stay indented") {
  const auto made = patch_json_report(std::nullopt, one_crash(), "/work", 42);
  REQUIRE(made.text);
  const auto j = ojson::parse(*made.text);
  for (const char* key : {"created", "duration", "exitcode", "root", "environment", "summary", "tests"})
    CHECK(j.contains(key));
  CHECK(j["root"] == "/work");
  CHECK(j["summary"]["failed"] == 1);
  CHECK(j["summary"]["total"] == 1);
  const auto indented = patch_json_report(std::string("{\n    \"tests\": []\n}\n"), one_crash(), "/x", 0);
  REQUIRE(indented.text);
  CHECK(indented.text->find("\n    \"tests\"") != std::string::npos);
}

TEST_CASE("pytest-json-report: what is not such a file is refused, not guessed at") {
  CHECK_THROWS_WITH(patch_json_report(std::string("[1]"), one_crash(), "/x", 0), Catch::Contains("not a JSON object"));
  CHECK_THROWS_WITH(patch_json_report(std::string("{\"tests\": {}}"), one_crash(), "/x", 0),
                    Catch::Contains("\"tests\" is not a list"));
  CHECK_THROWS(patch_json_report(std::string("{\"tests\": [], \"summary\": 3}"), one_crash(), "/x", 0));
  CHECK_THROWS(patch_json_report(std::string("{\"tests\": [] "), one_crash(), "/x", 0));  // torn
}

TEST_CASE("HTML text: markupsafe's escapes, and references decoded the way browsers do") {
  CHECK(html_escape(R"(<a href="x">'&'</a>)") == "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  CHECK(html_unescape("&lt;&gt;&amp;&quot;&#34;&#39;&#x27;&#X41;&apos;") == "<>&\"\"''A'");
  CHECK(html_unescape("&nbsp; &bogus; & &#; &#xZZ; &#99999999;") == "&nbsp; &bogus; & &#; &#xZZ; \xEF\xBF\xBD");
  const std::string any = "{\"k\": \"<b>\\\"x\\\" & 'y'</b>\\u00e9\"}";
  CHECK(html_unescape(html_escape(any)) == any);
}

TEST_CASE("pytest-html: the data-jsonblob attribute is found exactly once, in either quote") {
  CHECK_THROWS_WITH(find_jsonblob("<div id=\"x\"></div>"), Catch::Contains("no data-jsonblob"));
  CHECK_THROWS_WITH(find_jsonblob("<div data-jsonblob=\"{}\"></div><p data-jsonblob='{}'></p>"),
                    Catch::Contains("more than one"));
  CHECK_THROWS(find_jsonblob("<div data-jsonblob=\"{}></div>"));  // unclosed
  // Named in text or in another attribute's value: not the attribute.
  const std::string page = "<p>data-jsonblob=\"no\"</p><div  data-jsonblob = '{&#34;tests&#34;: {}}'></div>";
  const auto span = find_jsonblob(page);
  CHECK(page.substr(span.begin, span.length) == "{&#34;tests&#34;: {}}");
}

TEST_CASE("pytest-html: the crash is added to the blob, which still parses; counts grow; other bytes kept; once") {
  const ojson blob = {{"environment", {{"Python", "3.11"}}},
                      {"tests",
                       {{"tests/test_a.py::test_ok",
                         ojson::array({{{"result", "Passed"}, {"testId", "tests/test_a.py::test_ok"}}})}}},
                      {"renderCollapsed", ojson::array({"passed"})},
                      {"initialSort", "result"},
                      {"title", "report.html"}};
  const std::string before = "<html><body><p class=\"run-count\">1 test took 00:00:01.</p>\n"
                             "<input class=\"filter\" data-test-result=\"failed\" disabled/>"
                             "<span class=\"failed\">0 Failed,</span><span class=\"passed\">1 Passed,</span>\n"
                             "<div id=\"data-container\" data-jsonblob=\"";
  const std::string after = "\"></div>\n<script>/* data-jsonblob is read by dataset.jsonblob */</script></body></html>";
  const std::string page = before + html_escape(blob.dump()) + after;
  auto crashed = one_crash("tests/test_<b>.py::test_\"quoted\"['x']", "killed by SIGABRT: a < b & c");
  const auto first = patch_html_report(page, crashed, "report.html");
  REQUIRE(first.text);
  CHECK(first.added == 1);
  const auto patched = ojson::parse(blob_of(*first.text));
  CHECK(patched["environment"] == blob["environment"]);
  CHECK(patched["title"] == "report.html");
  const auto& entry = patched["tests"]["tests/test_<b>.py::test_\"quoted\"['x']"];
  REQUIRE(entry.is_array());
  CHECK(entry[0]["result"] == "Failed");
  CHECK(entry[0]["testId"] == "tests/test_<b>.py::test_\"quoted\"['x']");
  CHECK(entry[0]["resultsTableRow"][1] == "<td class=\"col-testId\">tests/test_&lt;b&gt;.py::test_&#34;quoted&#34;[&#39;x&#39;]</td>");
  CHECK(entry[0]["log"].get<std::string>().find("a &lt; b &amp; c") != std::string::npos);
  CHECK(first.text->find("<span class=\"failed\">1 Failed,</span><span class=\"passed\">1 Passed,</span>") !=
        std::string::npos);
  CHECK(first.text->find("<p class=\"run-count\">2 tests took 00:00:01.</p>") != std::string::npos);
  CHECK(first.text->find("data-test-result=\"failed\"/>") != std::string::npos);
  CHECK(first.text->ends_with(after));

  const auto second = patch_html_report(*first.text, crashed, "report.html");
  CHECK_FALSE(second.text);
}

TEST_CASE("pytest-html: a list of tests (older blobs) is matched by testId; a wrong blob is refused") {
  const std::string page = "<div data-jsonblob='" + html_escape(R"({"tests": [{"testId": "t.py::a"}]})") + "'></div>";
  const auto crashed = crashed_tests_from_records({{{"nodeid", "t.py::a"}}, {{"nodeid", "t.py::b"}}});
  const auto r = patch_html_report(page, crashed, "r.html");
  REQUIRE(r.text);
  CHECK(r.added == 1);
  CHECK(r.text->front() == '<');
  CHECK(r.text->find("data-jsonblob='") != std::string::npos);
  CHECK(ojson::parse(blob_of(*r.text))["tests"][1]["testId"] == "t.py::b");
  CHECK_THROWS(patch_html_report(std::string("<div data-jsonblob=\"[1]\"></div>"), crashed, "r.html"));
  CHECK_THROWS(patch_html_report(std::string("<div data-jsonblob=\"{&#34;tests&#34;: 3}\"></div>"), crashed, "r"));
  CHECK_THROWS(patch_html_report(std::string("<div data-jsonblob=\"{oops\"></div>"), crashed, "r"));
}

TEST_CASE("pytest-html: a missing report is made, standalone, with a blob that parses and is patched no more") {
  const auto made = patch_html_report(std::nullopt, one_crash(), "report.html");
  REQUIRE(made.text);
  const auto blob = ojson::parse(blob_of(*made.text));
  CHECK(blob["tests"].contains("tests/test_a.py::TestX::test_crash[1]"));
  CHECK(made.text->find("<span class=\"failed\">1 Failed,</span>") != std::string::npos);
  CHECK_FALSE(patch_html_report(*made.text, one_crash(), "report.html").text);
}

TEST_CASE("CSV: quoted fields with delimiters, doubled quotes and line breaks") {
  const auto rows = parse_csv("a,b,c\r\n\"x,1\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nlast,,", ',');
  REQUIRE(rows.size() == 3);
  CHECK(rows[1] == std::vector<std::string>{"x,1", "say \"hi\"", "two\nlines"});
  CHECK(rows[2] == std::vector<std::string>{"last", "", ""});
}

TEST_CASE("pytest-csv: a row per crashed test, columns by name, bytes before kept, once") {
  const std::string report = "id,module,name,file,doc,markers,status,message,duration\r\n"
                             "tests/test_a.py::test_ok,tests.test_a,test_ok,tests/test_a.py,,,passed,,0.01\r\n";
  const auto crashed = one_crash("tests/test_a.py::test_crash", "killed by SIGSEGV, \"badly\"\nat line 3");
  const auto first = patch_csv_report(report, crashed);
  REQUIRE(first.text);
  CHECK(first.text->starts_with(report));
  const auto rows = parse_csv(*first.text, ',');
  REQUIRE(rows.size() == 3);
  CHECK(rows[2][0] == "tests/test_a.py::test_crash");
  CHECK(rows[2][1] == "tests.test_a");
  CHECK(rows[2][2] == "test_crash");
  CHECK(rows[2][3] == "tests/test_a.py");
  CHECK(rows[2][6] == "failed");
  CHECK(rows[2][7].starts_with("crashed: killed by SIGSEGV, \"badly\"\nat line 3"));
  CHECK(rows[2][8] == "1.5");
  CHECK(first.text->ends_with("\r\n"));
  CHECK_FALSE(patch_csv_report(*first.text, crashed).text);
}

TEST_CASE("pytest-csv: other delimiters, \\n endings, a missing last newline, a missing file, no id column") {
  const auto semi = patch_csv_report(std::string("status;id\nfailed;t.py::x"), one_crash("t.py::y"));
  REQUIRE(semi.text);
  CHECK(*semi.text == "status;id\nfailed;t.py::x\nfailed;t.py::y\n");
  const auto made = patch_csv_report(std::nullopt, one_crash("t.py::y"));
  REQUIRE(made.text);
  CHECK(made.text->starts_with(std::string(kCsvDefaultHeader) + "\r\nt.py::y,t,y,t.py,,,failed,"));
  CHECK_THROWS_WITH(patch_csv_report(std::string("name,status\n"), one_crash()), Catch::Contains("no \"id\" column"));
  // An empty file (a pytest-csv that died before writing) is made anew.
  CHECK(patch_csv_report(std::string(""), one_crash("t.py::y")).text == made.text);
}
