// issue 16 (h16hard): the HTTP edge's rules against hostile clients: JSON
// depth, connections per peer uid, log rate, job frames first, relay returncodes.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/http/connection_limits.h"
#include "daemon/http/json_depth.h"
#include "daemon/http/peer_uid.h"
#include "daemon/http/relay_jobs.h"
#include "daemon/http/ws_frames.h"

using namespace lpd::daemon::http;
using nlohmann::json;

TEST_CASE("JSON nesting is bounded before anyone parses it", "[http][hostile]") {
  CHECK(json_depth_within(R"({"a": [1, {"b": 2}]})", 3));
  CHECK_FALSE(json_depth_within(R"({"a": [1, {"b": 2}]})", 2));
  CHECK(json_depth_within(R"({"a": "[[[[[[[[[[{{{{{"})", 1));  // brackets in strings do not count
  CHECK(json_depth_within(R"({"a": "\"[[[[", "b": 1})", 1));    // nor after an escaped quote
  CHECK(json_depth_within("[[[]]][[[]]]", 3));                   // depth, not count
  std::string deep;
  for (int i = 0; i < 90000; ++i) deep += "{\"a\":";
  deep += "1";
  deep.append(90000, '}');
  CHECK_FALSE(json_depth_within(deep));
  CHECK(json_depth_within(std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']')));
  CHECK_FALSE(json_depth_within(std::string(kMaxJsonDepth + 1, '[')));
  CHECK(json_depth_within("not json at all ]]]"));
}

TEST_CASE("one uid holds at most 16 unauthenticated connections; the owner keeps the rest", "[http][hostile]") {
  ConnectionLimits limits(1000);
  for (std::size_t i = 0; i < ConnectionLimits::kMaxUnauthenticatedPerUid; ++i) CHECK(limits.admit(2000u));
  CHECK_FALSE(limits.admit(2000u));
  CHECK(limits.unauthenticated(2000u) == 16);
  CHECK(limits.admit(2001u));                     // another user is not held up
  CHECK(limits.admit(std::nullopt));              // nor an unknown (remote) peer
  CHECK(limits.admit(1000u));                     // nor the owner
  CHECK(limits.admit(0u));                        // nor root
  CHECK(limits.authenticate(2000u, 1000u));       // one showed the owner's token: it is no longer 2000's
  CHECK(limits.admit(2000u));
  CHECK_FALSE(limits.admit(2000u));
  limits.release(2000u, std::nullopt);
  CHECK(limits.admit(2000u));
  CHECK(limits.total() == 21);
}

TEST_CASE("other users together leave the owner kReservedForOwner connections", "[http][hostile]") {
  ConnectionLimits limits(1000);
  std::size_t taken = 0;
  for (uid_t uid = 2000; uid < 2020; ++uid)
    for (int i = 0; i < 16; ++i) taken += limits.admit(uid) ? 1 : 0;
  CHECK(taken == ConnectionLimits::kMaxConnections - ConnectionLimits::kReservedForOwner);
  for (std::size_t i = 0; i < ConnectionLimits::kReservedForOwner; ++i) CHECK(limits.admit(1000u));
  CHECK_FALSE(limits.admit(1000u));  // the overall cap still holds
  limits.release(1000u, std::nullopt);
  CHECK(limits.admit(1000u));
}

// h16srv: 140 authenticated WebSockets of one user used to take every connection.
TEST_CASE("one user's token holds at most a quarter of the connections; root and others keep room",
          "[http][hostile]") {
  ConnectionLimits limits(0);  // a root lpd
  const uid_t b = 1001, a = 1000;
  std::size_t held = 0;
  // b connects again and again, showing its token on each connection.
  for (int i = 0; i < 200; ++i) {
    if (!limits.admit(b)) continue;
    if (limits.authenticate(b, b)) {
      ++held;
    } else {
      limits.release(b, std::nullopt);  // refused (503): the connection closes
    }
  }
  CHECK(held == ConnectionLimits::kMaxAuthenticatedPerUid);
  CHECK(limits.authenticated(b) == ConnectionLimits::kMaxAuthenticatedPerUid);
  CHECK(limits.unauthenticated(b) == 0);
  // Through another peer uid (root's connection, a remote one) b's token gets no more.
  REQUIRE(limits.admit(0u));
  CHECK_FALSE(limits.authenticate(0u, b));
  limits.release(0u, std::nullopt);
  REQUIRE(limits.admit(std::nullopt));
  CHECK_FALSE(limits.authenticate(std::nullopt, b));
  limits.release(std::nullopt, std::nullopt);
  // a and root still get in, and authenticate.
  REQUIRE(limits.admit(a));
  CHECK(limits.authenticate(a, a));
  REQUIRE(limits.admit(0u));
  CHECK(limits.authenticate(0u, 0u));
  // One of b's closes: b may hold one more.
  limits.release(b, b);
  CHECK(limits.authenticated(b) == ConnectionLimits::kMaxAuthenticatedPerUid - 1);
  REQUIRE(limits.admit(b));
  CHECK(limits.authenticate(b, b));
  CHECK(limits.total() == ConnectionLimits::kMaxConnections / 4 + 2);
}

TEST_CASE("users' tokens together leave root and the owner kReservedForOwner connections", "[http][hostile]") {
  ConnectionLimits limits(0);
  std::size_t held = 0;
  for (uid_t uid = 2000; uid < 2010; ++uid)
    for (std::size_t i = 0; i < ConnectionLimits::kMaxAuthenticatedPerUid; ++i)
      if (limits.admit(uid)) {
        if (limits.authenticate(uid, uid))
          ++held;
        else
          limits.release(uid, std::nullopt);
      }
  CHECK(held == ConnectionLimits::kMaxConnections - ConnectionLimits::kReservedForOwner);
  for (std::size_t i = 0; i < ConnectionLimits::kReservedForOwner; ++i) {
    REQUIRE(limits.admit(0u));
    CHECK(limits.authenticate(0u, 0u));
  }
  CHECK_FALSE(limits.admit(0u));  // the overall cap still holds
}

TEST_CASE("refused connections are logged once per 10 s with a count", "[http][hostile]") {
  RefusalLog log;
  CHECK(log.refused(100.0) == std::optional<std::size_t>(1));
  for (int i = 0; i < 50; ++i) CHECK_FALSE(log.refused(100.0 + i * 0.1));
  CHECK(log.refused(110.5) == std::optional<std::size_t>(51));
  CHECK_FALSE(log.refused(111.0));
}

namespace {
TcpEnd v4(const char* address, std::uint16_t port) {
  TcpEnd end;
  in_addr a{};
  REQUIRE(::inet_pton(AF_INET, address, &a) == 1);
  std::memcpy(end.address.data(), &a, 4);
  end.port = port;
  return end;
}
}  // namespace

TEST_CASE("a loopback peer's uid is the owner of its socket in /proc/net/tcp", "[http][hostile]") {
  const TcpEnd server = v4("127.0.0.1", 8080);
  const TcpEnd client = v4("127.0.0.1", 40000);
  const std::string s = proc_net_address(server);
  const std::string c = proc_net_address(client);
  CHECK(s.substr(8) == ":1F90");
  const std::string table =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: " + s + " 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n"
      "   1: " + s + " " + c + " 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n"
      "   2: " + c + " " + s + " 01 00000000:00000000 00:00000000 00000000  2001        0 3 1 0 20 4 30 10 -1\n";
  CHECK(socket_owner_in(table, client, server) == std::optional<uid_t>(2001));  // the peer's, not lpd's own end
  CHECK_FALSE(socket_owner_in(table, v4("127.0.0.1", 40001), server));
  CHECK_FALSE(socket_owner_in("garbage\n\n", client, server));
  // Not on this machine: not looked up.
  CHECK_FALSE(loopback_peer_uid(v4("192.0.2.1", 40000), server));
}

TEST_CASE("job frames go first and are never dropped; the drop notice names event frames", "[http][ws][hostile]") {
  WsOutbox out;
  const std::string big(WsOutbox::kMaxQueuedBytes / 4, 'x');
  for (int i = 0; i < 6; ++i) out.offer(big, FrameKind::kEvent, "test");
  CHECK(out.dropped_pending() == 2);
  for (int i = 0; i < 5; ++i) CHECK(out.offer("job" + std::to_string(i), FrameKind::kJob));
  CHECK_FALSE(out.overflowing());
  CHECK_FALSE(out.offer(big, FrameKind::kEvent, "pause"));  // events still drop past the bound
  for (int i = 0; i < 5; ++i) {  // queued last, written first, in their order
    REQUIRE(out.front());
    CHECK(*out.front() == "job" + std::to_string(i));
    out.written();
  }
  for (int i = 0; i < 4; ++i) {
    REQUIRE(out.front());
    CHECK(out.front()->size() == big.size());
    out.written();
  }
  REQUIRE(out.front());
  CHECK(json::parse(*out.front()) ==
        json{{"type", "lpd"},
             {"payload", {{"notice", "dropped"}, {"count", 3}, {"what", "event frames"}, {"types", {{"pause", 1}, {"test", 2}}}}}});
}

TEST_CASE("a WebSocket that takes no job frames overflows rather than growing", "[http][ws][hostile]") {
  WsOutbox out;
  const std::string job(kMaxWsJobTextBytes, 'j');
  std::size_t offered = 0;
  while (!out.overflowing() && offered < 10000) {
    out.offer(job, FrameKind::kJob);
    ++offered;
  }
  CHECK(out.overflowing());
  CHECK(offered * job.size() > WsOutbox::kMaxJobBytes);
  CHECK(offered * job.size() <= WsOutbox::kMaxJobBytes + job.size());
}

TEST_CASE("a pytest killed by signal N ends with returncode -N, as relay-run's subprocess says", "[http][jobs]") {
  CHECK(relay_returncode(137, 9) == std::optional<int>(-9));
  CHECK(relay_returncode(130, 2) == std::optional<int>(-2));
  CHECK(relay_returncode(1, std::nullopt) == std::optional<int>(1));
  CHECK(relay_returncode(130, std::nullopt) == std::optional<int>(130));  // exit(130) is an exit code
  CHECK(relay_returncode(std::nullopt, std::nullopt) == std::nullopt);
}

TEST_CASE("lpd's close frame when it stops is 1001 going away", "[http][ws]") {
  const std::string f = close_frame_bytes(1001, "lpd is stopping");
  REQUIRE(f.size() == 4 + 15);
  CHECK(static_cast<unsigned char>(f[0]) == 0x88);
  CHECK(static_cast<unsigned char>(f[1]) == 17);
  CHECK(static_cast<unsigned char>(f[2]) * 256 + static_cast<unsigned char>(f[3]) == 1001);
  CHECK(f.substr(4) == "lpd is stopping");
  CHECK(close_frame_bytes(1001, std::string(500, 'r')).size() == 4 + 123);
}
