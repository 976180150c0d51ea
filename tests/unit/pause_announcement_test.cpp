// h15term (issue 15): the terminal lines of pause events.
#include <catch2/catch.hpp>

#include "daemon/pauses/pause_announcement.h"

using namespace lpd::daemon;

namespace {

Pause failure_pause() {
  Pause p;
  p.pause_id = "3f2a1b2c3d4e5f60";
  p.run_id = "run-1";
  p.kind = PauseKind::kFailure;
  p.nodeid = "tests/test_a.py::test_fail";
  p.original_failure = "AssertionError: assert 1 == 2\n +  where 1 = f()";
  p.worker_id = "gw1";
  p.pid = 4242;
  p.timeout = 300;
  return p;
}

Pause checkpoint_pause() {
  Pause p = failure_pause();
  p.kind = PauseKind::kCheckpoint;
  p.original_failure.clear();
  p.task = "approve the screenshot";
  p.timeout = 2.5;
  return p;
}

}  // namespace

TEST_CASE("shell_word leaves plain words alone and single-quotes the rest", "[pause_announcement]") {
  CHECK(shell_word("3f2a1b2c3d4e5f60") == "3f2a1b2c3d4e5f60");
  CHECK(shell_word("/tmp/lpd-1000/lpd.sock") == "/tmp/lpd-1000/lpd.sock");
  CHECK(shell_word("") == "''");
  CHECK(shell_word("/tmp/my dir/lpd.sock") == "'/tmp/my dir/lpd.sock'");
  CHECK(shell_word("it's") == "'it'\\''s'");
  CHECK(shell_word("$(rm -rf ~)") == "'$(rm -rf ~)'");
  CHECK(shell_word("a;b") == "'a;b'");
}

TEST_CASE("terminal_line keeps the first line and no escape sequence", "[pause_announcement]") {
  CHECK(terminal_line("boom", 200) == "boom");
  CHECK(terminal_line("first\nsecond", 200) == "first ...");
  CHECK(terminal_line("first\r\nsecond", 200) == "first ...");
  CHECK(terminal_line("red \x1b[31mtext", 200) == "red ?[31mtext");
  CHECK(terminal_line("csi \xc2\x9b" "31m", 200) == "csi ?31m");  // C1 CSI
  CHECK(terminal_line("caf\xc3\xa9", 200) == "caf\xc3\xa9");       // printable UTF-8 stays
  CHECK(terminal_line("bad \xff byte", 200) == "bad ? byte");
  const std::string long_text(500, 'x');
  const std::string cut = terminal_line(long_text, 200);
  CHECK(cut.size() == 203);
  CHECK(cut.substr(200) == "...");
  // A cut line with more lines after it says "..." once.
  CHECK(terminal_line(long_text + "\nmore", 200) == cut);
}

TEST_CASE("socket_option names the socket only when lpctl would not find it", "[pause_announcement]") {
  CHECK(socket_option("/run/user/1000/lpd/lpd.sock", "/run/user/1000/lpd/lpd.sock") == "");
  CHECK(socket_option("/tmp/t/lpd.sock", "/run/user/1000/lpd/lpd.sock") == "--socket /tmp/t/lpd.sock");
  CHECK(socket_option("/tmp/a b/lpd.sock", "/x") == "--socket '/tmp/a b/lpd.sock'");
}

TEST_CASE("resume_command is a whole command that runs as pasted", "[pause_announcement]") {
  CHECK(resume_command(failure_pause(), "") == "lpctl resume 3f2a1b2c3d4e5f60");
  CHECK(resume_command(checkpoint_pause(), "--socket '/tmp/a b/lpd.sock'") ==
        "lpctl --socket '/tmp/a b/lpd.sock' resume 3f2a1b2c3d4e5f60 --result true");
}

TEST_CASE("pause_announcement: created, with who, why and how to resume", "[pause_announcement]") {
  CHECK(pause_announcement("pause.created", failure_pause(), "--socket /s") ==
        "lpd: gw1 PAUSED tests/test_a.py::test_fail after failing: AssertionError: assert 1 == 2 ... "
        "(pause 3f2a1b2c3d4e5f60, times out in 300 s; add --failure-reason TEXT to say why)\n"
        "lpd:   resume: lpctl --socket /s resume 3f2a1b2c3d4e5f60");
  Pause single = checkpoint_pause();
  single.worker_id = "";
  CHECK(pause_announcement("pause.created", single, "") ==
        "lpd: PAUSED tests/test_a.py::test_fail at a checkpoint: approve the screenshot "
        "(pause 3f2a1b2c3d4e5f60, times out in 2.5 s; decide with --result true|false|none [--reason TEXT])\n"
        "lpd:   resume: lpctl resume 3f2a1b2c3d4e5f60 --result true");
}

TEST_CASE("pause_announcement: how each pause ended, on one line", "[pause_announcement]") {
  Pause failure = failure_pause();
  failure.status = PauseStatus::kResumed;
  failure.decision.failure_reason = "flaky\nnetwork";
  CHECK(pause_announcement("pause.resumed", failure, "") ==
        "lpd: gw1 resumed tests/test_a.py::test_fail (pause 3f2a1b2c3d4e5f60; failure reason: flaky ...)");
  failure.decision.failure_reason.clear();
  CHECK(pause_announcement("pause.resumed", failure, "").ends_with("; no failure reason given)"));

  Pause checkpoint = checkpoint_pause();
  checkpoint.status = PauseStatus::kResumed;
  checkpoint.decision.result = false;
  checkpoint.decision.reason = "wrong colour";
  CHECK(pause_announcement("pause.resumed", checkpoint, "").ends_with("; result false: wrong colour)"));
  checkpoint.decision.result.reset();
  checkpoint.decision.reason.clear();
  CHECK(pause_announcement("pause.resumed", checkpoint, "").ends_with("; result none)"));

  CHECK(pause_announcement("pause.timed_out", failure_pause(), "") ==
        "lpd: gw1 pause 3f2a1b2c3d4e5f60 of tests/test_a.py::test_fail timed out after 300 s; "
        "the test goes on to its teardown");
  CHECK(pause_announcement("pause.timed_out", checkpoint_pause(), "").ends_with("the checkpoint returns result none"));
  CHECK(pause_announcement("pause.stale", failure_pause(), "") ==
        "lpd: gw1 pause 3f2a1b2c3d4e5f60 of tests/test_a.py::test_fail is stale: its test process (pid 4242) "
        "died while paused");
  CHECK(pause_announcement("run.ended", failure_pause(), "").empty());
}

TEST_CASE("pause_announcement: hostile text stays on its line", "[pause_announcement]") {
  Pause p = failure_pause();
  p.nodeid = "t.py::test[\x1b]0;pwned\x07]";
  p.worker_id = "gw0\nlpd:   resume: rm -rf ~";
  const std::string text = pause_announcement("pause.created", p, "");
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find('\x07') == std::string::npos);
  // Exactly two lines: nothing in the test's data starts a third.
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.substr(text.find('\n') + 1) == "lpd:   resume: lpctl resume 3f2a1b2c3d4e5f60");
  CHECK(text.rfind("lpd: gw0 ... PAUSED t.py::test[?]0;pwned?] after failing", 0) == 0);
}
