// h16srv (issue 16): what lpctl says when lpd does not answer on its socket.
#include <catch2/catch.hpp>

#include "client/unreachable_text.h"

using namespace lpd::client;

TEST_CASE("a group's label comes from /etc/group's text, else its number", "[lpctl][unreachable]") {
  const std::string etc_group = "root:x:0:\nlpd:x:998:ci1,ci2\nbroken line\n:x:997:\nlpdtok:x:1005:lpdtok_a\n";
  CHECK(group_label(998, etc_group) == "lpd (gid 998)");
  CHECK(group_label(1005, etc_group) == "lpdtok (gid 1005)");
  CHECK(group_label(99, etc_group) == "gid 99");
  CHECK(group_label(997, etc_group) == "gid 997");  // a line with no name names nothing
  CHECK(group_label(5, "") == "gid 5");
}

TEST_CASE("kept out of lpd's socket, lpctl says lpd runs and which group lets in", "[lpctl][unreachable]") {
  const DaemonUnreachable denied("/run/lpd/lpd.sock", "Permission denied", false, true);
  const std::string text = unreachable_text(denied, std::string("lpd (gid 998)"));
  CHECK(text.find("lpd is running on /run/lpd/lpd.sock, but you may not connect to it (Permission denied)") == 0);
  CHECK(text.find("members of group lpd (gid 998)") != std::string::npos);
  CHECK(text.find("Start it") == std::string::npos);
  const std::string unknown = unreachable_text(denied, std::nullopt);
  CHECK(unknown.find("--socket-group") != std::string::npos);
  CHECK(unknown.find("Start it") == std::string::npos);
  // Nobody there: start it, as before.
  const DaemonUnreachable absent("/tmp/lpd-1000/lpd.sock", "no such socket", true);
  CHECK(unreachable_text(absent, std::nullopt) ==
        "no lpd answering on /tmp/lpd-1000/lpd.sock (no such socket). Start it with: lpd start --socket "
        "/tmp/lpd-1000/lpd.sock");
}
