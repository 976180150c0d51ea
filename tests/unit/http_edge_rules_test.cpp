// issue 16 (h16api): the HTTP edge's rules: tokens, listen addresses, WebSocket frames and queue.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "daemon/http/http_listen.h"
#include "daemon/http/http_routes.h"
#include "daemon/http/http_token.h"
#include "daemon/http/job_text.h"
#include "daemon/http/ws_frames.h"

using namespace lpd::daemon::http;
using nlohmann::json;

TEST_CASE("the token is taken from the Bearer header, or ?token= where allowed, never a cookie", "[http]") {
  auto bearer = offered_token("Bearer abc", "", false);
  REQUIRE(bearer);
  CHECK(bearer->token == "abc");
  CHECK_FALSE(bearer->from_query);
  // RFC 7235 section 2.1: the scheme's name is case-insensitive.
  for (const char* header : {"bearer abc", "BEARER abc", "BeArEr abc", "  Bearer\tabc  "}) {
    auto any_case = offered_token(header, "", false);
    REQUIRE(any_case);
    CHECK(any_case->token == "abc");
  }
  CHECK_FALSE(offered_token("Bearerabc", "", false));
  CHECK_FALSE(offered_token("Basic abc", "", false));
  CHECK_FALSE(offered_token("Bearer", "", false));
  // The query counts only where the edge allows it (GET /ws).
  CHECK_FALSE(offered_token("", "x=1&token=abc", false));
  auto query = offered_token("", "x=1&token=a%62c", true);
  REQUIRE(query);
  CHECK(query->token == "abc");
  CHECK(query->from_query);
  CHECK_FALSE(offered_token("", "tokens=2", true));
  // The header wins over the query.
  CHECK(offered_token("Bearer one", "token=two", true)->token == "one");
}

TEST_CASE("token comparison: equal only when every byte is", "[http]") {
  const std::string token(64, 'a');
  CHECK(token_matches(token, token));
  CHECK_FALSE(token_matches(std::string(63, 'a') + "b", token));
  CHECK_FALSE(token_matches(std::string(63, 'a'), token));
  CHECK_FALSE(token_matches("", ""));  // no token is never a match
}

TEST_CASE("lpd start --http takes loopback addresses, and others only with --http-allow-remote", "[http]") {
  auto v4 = parse_listen_address("127.0.0.1:0", false);
  CHECK(v4.host == "127.0.0.1");
  CHECK(v4.port == 0);
  CHECK(v4.loopback);
  CHECK(parse_listen_address("[::1]:8080", false).port == 8080);
  CHECK(parse_listen_address("localhost:80", false).host == "127.0.0.1");
  CHECK_THROWS_AS(parse_listen_address("0.0.0.0:8080", false), std::invalid_argument);
  CHECK_FALSE(parse_listen_address("0.0.0.0:8080", true).loopback);
  CHECK_THROWS_AS(parse_listen_address("example.com:80", true), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:65536", false), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1", false), std::invalid_argument);
  CHECK_THROWS_AS(parse_listen_address("127.0.0.1:x", false), std::invalid_argument);
}

TEST_CASE("dispatcher lines become {type, payload} frames", "[http][ws]") {
  auto none = [](const std::string&) { return false; };
  auto reply = json::parse(*frame_of_line(R"({"id":3,"ok":true,"result":{"pong":true}})", none));
  CHECK(reply == json{{"type", "reply"}, {"payload", {{"id", 3}, {"ok", true}, {"result", {{"pong", true}}}}}});
  CHECK_FALSE(frame_of_line(R"({"id":"lpd-ws-events","ok":true,"result":{}})", none));
  auto test = json::parse(*frame_of_line(R"({"event":"test.finish","data":{"nodeid":"t::a","seq":9,"run_id":"r"}})", none));
  CHECK(test["type"] == "test");
  CHECK(test["payload"]["event"] == "test.finish");
  CHECK(test["payload"]["seq"] == 9);
  CHECK(test["payload"]["run_id"] == "r");
  auto log = json::parse(*frame_of_line(R"({"event":"proc.log","data":{"data":"x"}})", none));
  CHECK(log["type"] == "proc");
}

TEST_CASE("lpd's job event reads as a relay job message; a relay job's own run sends none", "[http][ws]") {
  const std::string line =
      R"({"event":"job","data":{"type":"job","payload":{"id":"r1","state":"done","returncode":1,"text":"exited"},"run_id":"r1","seq":5}})";
  auto job = json::parse(*frame_of_line(line, [](const std::string&) { return false; }));
  CHECK(job["type"] == "job");
  CHECK(job["payload"]["id"] == "r1");
  CHECK(job["payload"]["state"] == "done");
  CHECK(job["payload"]["returncode"] == 1);
  CHECK(job["payload"]["seq"] == 5);
  CHECK_FALSE(frame_of_line(line, [](const std::string& run) { return run == "r1"; }));
}

TEST_CASE("a WebSocket's queue drops past its bound and says how many once drained", "[http][ws]") {
  WsOutbox out;
  const std::string big(WsOutbox::kMaxQueuedBytes / 4, 'x');
  int taken = 0;
  for (int i = 0; i < 10; ++i) taken += out.offer(big) ? 1 : 0;
  CHECK(taken == 4);
  CHECK(out.congested());
  CHECK(out.dropped_pending() == 6);
  CHECK(out.queued_bytes() <= WsOutbox::kMaxQueuedBytes);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(out.front());
    CHECK(out.front()->size() == big.size());
    out.written();
  }
  REQUIRE(out.front());
  CHECK(json::parse(*out.front()) ==  // h16hard: the notice names what it dropped
        json{{"type", "lpd"}, {"payload", {{"notice", "dropped"}, {"count", 6}, {"what", "event frames"}}}});
  out.written();
  CHECK(out.front() == nullptr);
  CHECK(out.offer(std::string(WsOutbox::kMaxQueuedBytes * 2, 'y')));  // an empty queue takes one frame, however long
}

TEST_CASE("a job's text is the newest part of its output, saying what it leaves out", "[http]") {
  char dir_template[] = "/tmp/lpd-job-text-XXXXXX";
  const std::string dir = ::mkdtemp(dir_template);
  const std::string path = dir + "/output.log";
  {
    std::ofstream out(path);
    out << "first line\n" << std::string(100, 'x') << "\xc3\xa9" << "tail\n";  // é across the cut
  }
  CHECK(job_output_text(path, 1000) == "first line\n" + std::string(100, 'x') + "\xc3\xa9tail\n");
  const std::string cut = job_output_text(path, 6);  // starts inside the é: begins after it
  CHECK(cut.rfind("[lpd: the first ", 0) == 0);
  CHECK(cut.substr(cut.find("]\n") + 2) == "tail\n");
  CHECK(job_output_text(dir + "/missing.log").empty());
  const std::string link = dir + "/link.log";
  REQUIRE(::symlink(path.c_str(), link.c_str()) == 0);
  CHECK(job_output_text(link).empty());  // never through a link
  std::filesystem::remove_all(dir);
}

TEST_CASE("methods a path takes: HEAD wherever GET is, the rest 405 with Allow", "[http]") {
  CHECK(HttpRoutes::allowed_methods("/") == "GET, HEAD");
  CHECK(HttpRoutes::allowed_methods("/style.css") == "GET, HEAD");
  CHECK(HttpRoutes::allowed_methods("/jobs") == "GET, HEAD, POST, DELETE");
  CHECK(HttpRoutes::allowed_methods("/jobs/j1") == "GET, HEAD, DELETE");
  CHECK(HttpRoutes::allowed_methods("/jobs/j1/actions") == "POST");
  CHECK(HttpRoutes::allowed_methods("/api/op/ping") == "POST");
  CHECK(HttpRoutes::allowed_methods("/ws") == "GET");
  CHECK(HttpRoutes::allowed_methods("/no-such-file").empty());  // 404 (with the token), not 405
  CHECK(HttpRoutes::allowed_methods("/jobs/j1/other").empty());
}

TEST_CASE("only this server's own page, or no page at all, may act", "[http]") {
  CHECK(HttpRoutes::same_origin("", "127.0.0.1:8080"));  // not a browser's cross-site request
  CHECK(HttpRoutes::same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
  CHECK(HttpRoutes::same_origin("https://lpd.example:443", "lpd.example:443"));
  // Another port of the same host is another site (another local user's server).
  CHECK_FALSE(HttpRoutes::same_origin("http://127.0.0.1:9999", "127.0.0.1:8080"));
  CHECK_FALSE(HttpRoutes::same_origin("http://127.0.0.1:8080.evil", "127.0.0.1:8080"));
  CHECK_FALSE(HttpRoutes::same_origin("http://evil.127.0.0.1:8080", "127.0.0.1:8080"));
  CHECK_FALSE(HttpRoutes::same_origin("null", "127.0.0.1:8080"));
  CHECK_FALSE(HttpRoutes::same_origin("http://127.0.0.1:8080", ""));
}
