// h14owner: root and the admin group choose among users' helpers (--owner),
// proc.kill_all and leases, and lpctl's refusal of text that is not UTF-8.
#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "client/commands/helper_address.h"
#include "client/text_arguments.h"
#include "daemon/processes/process_registry.h"
#include "daemon/processes/process_service.h"
#include "tests/unit/started_helpers.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// A registry of helpers in given states; owners are named "user<uid>".
struct Owners : StartedHelpers {
  void add(uid_t owner, const std::string& scope, const std::string& name, ProcessState state = ProcessState::kReady) {
    registry.mutable_record(StartedHelpers::add(owner, scope, name))->state = state;
  }
  ProcessKey resolve(const std::string& name, std::optional<std::string> scope, uid_t caller,
                     std::optional<uid_t> owner = std::nullopt, bool running_first = false) const {
    return registry.resolve(ProcessAddress{name, std::move(scope), owner, running_first}, caller,
                            [](uid_t uid) { return "user" + std::to_string(uid); });
  }
  /// The conflict's message, or "" when it resolved.
  std::string conflict(const std::string& name, std::optional<std::string> scope, uid_t caller,
                       bool running_first = false) const {
    try {
      resolve(name, std::move(scope), caller, std::nullopt, running_first);
    } catch (const lpd::protocol::Error& e) {
      CHECK(e.code() == ErrorCode::kConflict);
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST_CASE_METHOD(Owners, "root never gets one user's helper over another's: the conflict names the owners") {
  add(1001, "/p", "db");
  add(1002, "/p", "db");
  const std::string message = conflict("db", "/p", 0);
  CHECK(message.find("ambiguous") != std::string::npos);
  CHECK(message.find("user1001, user1002") != std::string::npos);
  CHECK(message.find("--owner") != std::string::npos);
  CHECK(resolve("db", "/p", 0, 1002u) == ProcessKey{1002, "/p", "db"});
  // Without a scope (an old client), the same.
  CHECK(conflict("db", std::nullopt, 0).find("user1001, user1002") != std::string::npos);
  // The owner's own is still theirs, whoever else has one.
  CHECK(resolve("db", "/p", 1001) == ProcessKey{1001, "/p", "db"});
}

TEST_CASE_METHOD(Owners, "killing counts running helpers only; reading counts ended ones too") {
  add(1001, "/p", "db");
  add(1002, "/p", "db", ProcessState::kExited);
  // kill/release: the one that runs; the other user's ended record is no rival.
  CHECK(resolve("db", "/p", 0, std::nullopt, /*running_first=*/true) == ProcessKey{1001, "/p", "db"});
  // info/logs: the crashed helper's log is a thing one reads: say whose.
  CHECK(conflict("db", "/p", 0).find("user1001, user1002") != std::string::npos);
  // Nothing runs: every ended one counts again, even for a kill.
  add(1001, "/p", "db", ProcessState::kKilled);
  CHECK(conflict("db", "/p", 0, true).find("user1001, user1002") != std::string::npos);
  // Two running: a kill is ambiguous too.
  add(1001, "/p", "db", ProcessState::kStarting);
  add(1002, "/p", "db", ProcessState::kReady);
  CHECK(conflict("db", "/p", 0, true).find("user1001, user1002") != std::string::npos);
}

TEST_CASE_METHOD(Owners, "without a scope, the caller's own in several projects are named, ended ones too") {
  add(1001, "/p", "db", ProcessState::kExited);
  add(1001, "/q", "db");
  // Only other users' ended records step aside for a kill: the caller's own
  // in another project is not lpd's to pick (test_processes_scope.py).
  const std::string message = conflict("db", std::nullopt, 1001, /*running_first=*/true);
  CHECK(message.find("/p::db") != std::string::npos);
  CHECK(message.find("/q::db") != std::string::npos);
  // The same for other users' across projects: root gets no one project's
  // helper because the other project's has ended.
  add(1002, "/p", "web", ProcessState::kExited);
  add(1003, "/q", "web");
  CHECK(conflict("web", std::nullopt, 0, true).find("user1002, user1003") != std::string::npos);
  CHECK(resolve("web", "/q", 0, std::nullopt, true) == ProcessKey{1003, "/q", "web"});
}

TEST_CASE_METHOD(Owners, "an owner asked for who has none of that name is not found, naming the owner") {
  add(1001, "/p", "db");
  try {
    resolve("db", "/p", 0, 1005u);
    FAIL("resolved");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == ErrorCode::kNotFound);
    CHECK(std::string(e.what()).find("owned by user1005") != std::string::npos);
  }
}

TEST_CASE_METHOD(Owners, "one other user's helpers in several scopes: asks for the scope, not the owner") {
  add(1001, "/p", "web");
  add(1001, "/q", "web");
  const std::string message = conflict("web", std::nullopt, 0);
  CHECK(message.find("user1001 has 2") != std::string::npos);
  CHECK(message.find("/p") == std::string::npos);  // another user's scopes are not shown
}

TEST_CASE("kill-all leaves a helper other connections hold, unless forced") {
  CHECK(kill_all_verdict(false, false, 0) == BulkKillVerdict::kKill);
  CHECK(kill_all_verdict(false, true, 1) == BulkKillVerdict::kKill);         // the caller is the last holder
  CHECK(kill_all_verdict(false, true, 3) == BulkKillVerdict::kReleaseOnly);  // others keep it
  CHECK(kill_all_verdict(false, false, 2) == BulkKillVerdict::kKeep);        // a live session's helper
  CHECK(kill_all_verdict(true, false, 2) == BulkKillVerdict::kKill);
  CHECK(kill_all_verdict(true, true, 2) == BulkKillVerdict::kKill);
}

TEST_CASE("UTF-8 is checked as JSON parsers check it") {
  using lpd::client::first_invalid_utf8;
  CHECK(!first_invalid_utf8(""));
  CHECK(!first_invalid_utf8("plain"));
  CHECK(!first_invalid_utf8("pr\xc3\xaat \xe2\x82\xac \xf0\x9f\x98\x80"));  // ê € 😀
  CHECK(first_invalid_utf8("ab\xff") == 2u);
  CHECK(first_invalid_utf8("\xc3") == 0u);                 // truncated
  CHECK(first_invalid_utf8("x\xc0\xaf") == 1u);            // overlong '/'
  CHECK(first_invalid_utf8("\xe0\x80\xaf") == 0u);         // overlong, 3 bytes
  CHECK(first_invalid_utf8("\xed\xa0\x80") == 0u);         // a surrogate (CESU-8)
  CHECK(first_invalid_utf8("\xf4\x90\x80\x80") == 0u);     // above U+10FFFF
  CHECK(first_invalid_utf8("\xe2\x82x") == 0u);            // a bad continuation byte
  CHECK(first_invalid_utf8("ok \x80") == 3u);              // a lone continuation byte
}

TEST_CASE("lpctl names the argument that is not UTF-8") {
  using lpd::client::require_utf8_fields;
  using lpd::client::UsageError;
  const auto message = [](const nlohmann::json& fields) -> std::string {
    try {
      require_utf8_fields(fields);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message({{"argv", {"sh", "-c", "echo pr\xc3\xaat"}}, {"cwd", "/tmp"}, {"env", {{"A", "b"}}}}).empty());
  CHECK(message({{"argv", {"sh", "-c", "echo \xff"}}}).rfind("argv[2] is not valid UTF-8", 0) == 0);
  CHECK(message({{"argv", {"sh", "-c", "echo \xff"}}}).find("\"echo \\xff\"") != std::string::npos);
  CHECK(message({{"cwd", "/tmp/\xfe"}}).rfind("the working directory (cwd) is not valid UTF-8", 0) == 0);
  CHECK(message({{"env", {{"LANGX", "a\xff"}}}}).rfind("environment variable LANGX is not valid UTF-8", 0) == 0);
  CHECK(message({{"env", {{"B\xff", "a"}}}}).rfind("the name of environment variable \"B\\xff\"", 0) == 0);
}

TEST_CASE("lpctl's --owner takes a uid or a user name") {
  using lpd::client::parse_owner;
  CHECK(parse_owner("0") == 0u);
  CHECK(parse_owner("root") == 0u);
  CHECK(parse_owner("4000000") == 4000000u);
  CHECK_THROWS_AS(parse_owner("surely-no-such-user-lpd"), lpd::client::UsageError);
  CHECK_THROWS_AS(parse_owner(""), lpd::client::UsageError);
  CHECK(lpd::client::owner_label(0) == "root");
  CHECK(lpd::client::owner_label(3999999) == "3999999");
}
