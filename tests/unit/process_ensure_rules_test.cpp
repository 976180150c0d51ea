// h14ensure: the rules behind proc.ensure's answer (outcome, differs) and
// the one spelling of a helper scope.
#include <catch2/catch.hpp>

#include "daemon/processes/ensure_outcome.h"
#include "daemon/processes/process_name.h"
#include "protocol/error.h"

using namespace lpd::daemon;

namespace {

lpd::protocol::ErrorCode scope_error_code(std::string_view scope) {
  try {
    normalize_scope(scope);
  } catch (const lpd::protocol::Error& e) {
    return e.code();
  }
  FAIL("no error for \"" << std::string(scope) << "\"");
  return lpd::protocol::ErrorCode::kInternal;
}

}  // namespace

TEST_CASE("one project is one scope however it is spelled") {
  CHECK(normalize_scope("/w/proj") == "/w/proj");
  CHECK(normalize_scope("/w/proj/") == "/w/proj");
  CHECK(normalize_scope("/w/proj///") == "/w/proj");
  CHECK(normalize_scope("/w//proj") == "/w/proj");
  CHECK(normalize_scope("//w/proj") == "/w/proj");
  CHECK(normalize_scope("/w/./proj/.") == "/w/proj");
  CHECK(normalize_scope("/w/proj/sub/..") == "/w/proj");
  CHECK(normalize_scope("/w/x/../proj") == "/w/proj");
  CHECK(normalize_scope("/w/proj/a/b/../../") == "/w/proj");
}

TEST_CASE("a scope never climbs above the root") {
  CHECK(normalize_scope("/") == "/");
  CHECK(normalize_scope("//") == "/");
  CHECK(normalize_scope("/.") == "/");
  CHECK(normalize_scope("/..") == "/");
  CHECK(normalize_scope("/../../w") == "/w");
  CHECK(normalize_scope("/w/../..") == "/");
}

TEST_CASE("names that only look like dots are kept") {
  CHECK(normalize_scope("/w/...") == "/w/...");
  CHECK(normalize_scope("/w/.proj/..x") == "/w/.proj/..x");
  CHECK(normalize_scope("/w/a b") == "/w/a b");
}

TEST_CASE("the global scope stays empty") { CHECK(normalize_scope("").empty()); }

TEST_CASE("relative scopes are refused with a clear error") {
  for (const char* scope : {".", "..", "proj", "./proj", "../proj", "w/proj/"}) {
    CHECK(scope_error_code(scope) == lpd::protocol::ErrorCode::kBadRequest);
    try {
      normalize_scope(scope);
    } catch (const lpd::protocol::Error& e) {
      CHECK(std::string(e.what()).find("is relative") != std::string::npos);
    }
  }
}

TEST_CASE("hostile scopes are refused") {
  CHECK(scope_error_code("/w/a\nb") == lpd::protocol::ErrorCode::kBadRequest);
  CHECK(scope_error_code(std::string(kMaxScopeBytes + 1, '/')) == lpd::protocol::ErrorCode::kBadRequest);
  // The limit is on what was sent, before normalizing shrinks it.
  CHECK(normalize_scope(std::string(kMaxScopeBytes, '/')) == "/");
}

TEST_CASE("full names are split at the normalized scope") {
  const auto [scope, name] = split_full_name("/w/proj/./::db");
  CHECK(scope == "/w/proj");
  CHECK(name == "db");
}

TEST_CASE("an ensure names the fields a running helper differs in") {
  const std::vector<std::string> argv{"srv", "--port", "1"};
  const std::string pattern = "ready";
  const std::string cwd = "/w";
  CHECK(ensure_differences({argv, pattern, cwd}, {argv, pattern, cwd}).empty());
  const std::vector<std::string> other_argv{"srv", "--port", "2"};
  const std::string other_pattern = "listening";
  const std::string no_pattern;
  const std::string other_cwd = "/x";
  CHECK(ensure_differences({argv, pattern, cwd}, {other_argv, pattern, cwd}) == std::vector<std::string>{"argv"});
  CHECK(ensure_differences({argv, pattern, cwd}, {argv, no_pattern, cwd}) == std::vector<std::string>{"pattern"});
  CHECK(ensure_differences({argv, pattern, cwd}, {other_argv, other_pattern, other_cwd}) ==
        std::vector<std::string>{"argv", "pattern", "cwd"});
}

TEST_CASE("outcomes are named as replies carry them") {
  CHECK(to_string(EnsureOutcome::kStarted) == "started");
  CHECK(to_string(EnsureOutcome::kJoined) == "joined");
  CHECK(to_string(EnsureOutcome::kReused) == "reused");
}
