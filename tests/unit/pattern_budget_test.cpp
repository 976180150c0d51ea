// h14fixA (issue 14, finding 5): a line's search has a bounded cost.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "daemon/logs/pattern.h"
#include "daemon/logs/pattern_wait.h"
#include "protocol/error.h"

using namespace lpd::daemon;

TEST_CASE("a catastrophic pattern gives up on a long line instead of spinning") {
  const auto hostile = Pattern::compile("(.*a){25}!x");
  const std::string line(60000, 'a');
  const auto before = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(hostile.matches(line), PatternTooComplex);
  try {
    hostile.matches(line);
  } catch (const PatternTooComplex& e) {
    CHECK_THAT(e.what(), Catch::Contains("(.*a){25}!x") && Catch::Contains("too complex"));
  }
  // Printed, never asserted (timing belongs in bench/): two give-ups.
  WARN("two give-ups took " << std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count()
                            << " s");
  CHECK_THROWS_AS(Pattern::compile("(a|aa)+$").matches(std::string(30, 'a') + "b"), PatternTooComplex);
}

TEST_CASE("ordinary patterns still match long lines within the budget") {
  const std::string filler(60000, 'x');
  CHECK(Pattern::compile("ready").matches(filler + " ready"));
  CHECK(Pattern::compile(".*ready").matches(filler + " ready"));
  CHECK(Pattern::compile(R"(listening on port (\d+))").matches(filler + " listening on port 8080"));
  CHECK(Pattern::compile(R"(^\S+ ready$)").matches(filler + " ready"));
  CHECK_FALSE(Pattern::compile(R"(port \d+)").matches(filler));
  CHECK(Pattern::compile("(?i)PRÊT").matches(filler + " prêt"));
  CHECK(Pattern::compile(R"(\w+ prêt)").matches(std::string(2000, 'w') + " prêt"));
}

TEST_CASE("a pattern longer than the limit is refused at compile") {
  CHECK_THROWS_AS(Pattern::compile(std::string(kMaxPatternBytes + 1, 'a')), lpd::protocol::Error);
  CHECK(Pattern::compile(std::string(kMaxPatternBytes, 'a')).matches(std::string(kMaxPatternBytes, 'a')));
}

TEST_CASE("a wait whose pattern gives up reports it once and searches no further line") {
  int too_complex = 0;
  int matched = 0;
  std::string why;
  PatternWait::Callbacks callbacks;
  callbacks.on_match = [&](const std::string&, std::uint64_t) { ++matched; };
  callbacks.on_too_complex = [&](const std::string& text) {
    ++too_complex;
    why = text;
  };
  PatternWait wait(Pattern::compile("(.*a){25}!x|ready"), 0, 0, callbacks);
  wait.feed(std::string(20000, 'a') + "\n");
  wait.feed(std::string(20000, 'a') + "\nready\n");
  CHECK(too_complex == 1);
  CHECK(matched == 0);
  CHECK_THAT(why, Catch::Contains("too complex"));
}

TEST_CASE("search credit: earned per line and byte, capped, spent") {
  SearchCredit credit;
  CHECK(credit.banked() == SearchCredit::kMax);
  CHECK(credit.allowance_for(100) == SearchCredit::kMax);  // never above the cap
  credit.spend(SearchCredit::kMax);
  CHECK(credit.banked() == 0);
  CHECK(credit.allowance_for(10) == SearchCredit::kPerLine + 10 * SearchCredit::kPerByte);
  credit.spend(UINT64_MAX);
  CHECK(credit.banked() == 0);
}

TEST_CASE("many short lines each just within a line's allowance still exhaust one log's credit") {
  // Each line costs the pattern thousands of states, far more than it
  // earns: a per-line limit alone would let a flood of them hold the loop.
  int too_complex = 0;
  PatternWait::Callbacks callbacks;
  callbacks.on_too_complex = [&](const std::string&) { ++too_complex; };
  PatternWait wait(Pattern::compile("(a|aa)+$"), 0, 0, callbacks);
  std::string chunk;
  while (chunk.size() < 64 * 1024) chunk += std::string(18, 'a') + "b\n";
  wait.feed(chunk);
  CHECK(too_complex == 1);
}

TEST_CASE("ordinary patterns never run short over a long log") {
  int matched = 0;
  PatternWait::Callbacks callbacks;
  callbacks.on_match = [&](const std::string&, std::uint64_t) { ++matched; };
  callbacks.on_too_complex = [](const std::string& why) { FAIL(why); };
  PatternWait wait(Pattern::compile(R"(listening on (\S+):(\d+))"), 0, 0, callbacks);
  for (int i = 0; i < 2000; ++i) wait.feed("INFO starting worker " + std::to_string(i) + " with some words\n");
  wait.feed(std::string(60000, 'y') + "\n");
  wait.feed("INFO listening on 127.0.0.1:8080\n");
  CHECK(matched == 1);
}
