#include <csignal>

#include <string>

#include <catch2/catch.hpp>

#include "protocol/signal_names.h"

using lpd::protocol::known_signal_name;
using lpd::protocol::signal_name;
using lpd::protocol::signal_number;

TEST_CASE("signals are named as kill -l names them, and unnamed ones by number", "[signals]") {
  CHECK(signal_name(SIGSEGV) == "SIGSEGV");
  CHECK(signal_name(SIGKILL) == "SIGKILL");
  CHECK(signal_name(SIGWINCH) == "SIGWINCH");
  CHECK(signal_name(SIGRTMIN) == "SIG" + std::to_string(SIGRTMIN));
  CHECK(known_signal_name(SIGABRT) == "SIGABRT");
  CHECK_FALSE(known_signal_name(0));
  CHECK_FALSE(known_signal_name(SIGRTMIN));
}

TEST_CASE("a signal is read as kill(1) takes it", "[signals]") {
  CHECK(signal_number("TERM") == SIGTERM);
  CHECK(signal_number("SIGTERM") == SIGTERM);
  CHECK(signal_number("sigkill") == SIGKILL);
  CHECK(signal_number("usr1") == SIGUSR1);
  CHECK(signal_number("9") == SIGKILL);
  CHECK_FALSE(signal_number(""));
  CHECK_FALSE(signal_number("0"));
  CHECK_FALSE(signal_number("999"));
  CHECK_FALSE(signal_number("NOPE"));
  for (int signo = 1; signo < SIGRTMIN; ++signo)
    if (const auto name = known_signal_name(signo)) CHECK(signal_number(*name) == signo);
}
