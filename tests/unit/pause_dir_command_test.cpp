// h15lp: pytest-live-pause command files (commands/<pause_id>.resume.json).
#include <catch2/catch.hpp>

#include "daemon/pauses/pause_dir_command.h"

using namespace lpd::daemon;

TEST_CASE("only <pause_id>.resume.json names a command", "[pause_dir]") {
  CHECK(pause_id_of_command_file("40e16655195f4fc8.resume.json") == std::optional<std::string>("40e16655195f4fc8"));
  CHECK_FALSE(pause_id_of_command_file(".resume.json"));
  CHECK_FALSE(pause_id_of_command_file("x.resume.json.tmp"));
  CHECK_FALSE(pause_id_of_command_file("..resume.json"));
  CHECK_FALSE(pause_id_of_command_file("-x.resume.json"));
  CHECK_FALSE(pause_id_of_command_file("x.json"));
}

TEST_CASE("a command body reads as pause.resume's fields", "[pause_dir]") {
  auto failure = std::get<ResumeRequest>(parse_pause_command(R"({"failure_reason": "manually confirmed"})"));
  CHECK(failure.failure_reason == std::optional<std::string>("manually confirmed"));
  CHECK_FALSE(failure.has_result);
  auto checkpoint = std::get<ResumeRequest>(parse_pause_command(R"({"result": true, "reason": "approved"})"));
  CHECK(checkpoint.has_result);
  CHECK(checkpoint.result == std::optional<bool>(true));
  CHECK(checkpoint.reason == std::optional<std::string>("approved"));
  auto none = std::get<ResumeRequest>(parse_pause_command(R"({"result": null})"));
  CHECK(none.has_result);
  CHECK_FALSE(none.result);
  auto empty = std::get<ResumeRequest>(parse_pause_command("{}"));  // a failure pause without a reason
  CHECK_FALSE(empty.has_result);
  CHECK_FALSE(empty.failure_reason);
}

TEST_CASE("a malformed command body is refused with the reason", "[pause_dir]") {
  CHECK(std::get<std::string>(parse_pause_command("{")) == "not valid JSON");
  CHECK(std::get<std::string>(parse_pause_command("[1]")) == "not a JSON object");
  CHECK(std::get<std::string>(parse_pause_command(R"({"result": "yes"})")).find("\"result\"") != std::string::npos);
  CHECK(std::get<std::string>(parse_pause_command(R"({"failure_reason": 3})")).find("failure_reason") !=
        std::string::npos);
}

TEST_CASE("refused command files: ten a minute per run are reported, the rest counted into the next", "[pause_dir]") {
  using lpd::daemon::RejectionBudget;
  RejectionBudget budget;
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  for (unsigned i = 0; i < RejectionBudget::kPerWindow; ++i) {
    const auto v = budget.take(t0 + std::chrono::milliseconds(i));
    CHECK(v.report);
    CHECK(v.unreported_before == 0);
  }
  // A user rewriting a bad file in a loop: counted, not published.
  for (int i = 0; i < 5000; ++i) CHECK_FALSE(budget.take(t0 + std::chrono::seconds(1)).report);
  // Still inside the window.
  CHECK_FALSE(budget.take(t0 + RejectionBudget::kWindow - std::chrono::milliseconds(1)).report);
  // The next window: reported, saying how many went unreported.
  const auto next = budget.take(t0 + RejectionBudget::kWindow);
  CHECK(next.report);
  CHECK(next.unreported_before == 5001);
  CHECK(budget.take(t0 + RejectionBudget::kWindow).unreported_before == 0);
}
