#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/transport/session.h"

using namespace lpd::daemon;
using lpd::protocol::ErrorCode;

namespace {

/// One Session over a socketpair, driven by io_context::poll() (only what
/// is ready runs, nothing waits), and the peer's raw end.
struct SessionFixture {
  boost::asio::io_context io;
  int peer_fd = -1;
  int calls = 0;
  std::vector<Responder> deferred;  // requests of "later", not answered yet
  Dispatcher dispatcher{std::vector<Operation>{
      {"big", "", Gate::kOpen, [this](Call&) {
         ++calls;
         return json{{"blob", std::string(100 * 1024, 'x')}};
       }},
      {"ping", "", Gate::kOpen, [](Call&) { return json{{"pong", true}}; }},
      {"later", "", Gate::kOpen, [this](Call& call) {
         deferred.push_back(call.defer());
         return json();
       }},
  }};
  std::shared_ptr<Session> session;
  bool closed = false;

  SessionFixture() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    peer_fd = fds[1];
    // Small kernel buffers, whatever the host's defaults: what lpd queues
    // itself is then what the test sees.
    const int small = 64 * 1024;
    ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(peer_fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ::fcntl(peer_fd, F_SETFL, O_NONBLOCK);
    Session::Socket socket(io, boost::asio::local::stream_protocol(), fds[0]);
    socket.non_blocking(true);
    Peer peer;
    peer.said_hello = true;
    session = std::make_shared<Session>(std::move(socket), peer, dispatcher, std::chrono::milliseconds(60'000),
                                        [this](Session&) { closed = true; });
    session->start();
  }
  ~SessionFixture() {
    if (session) session->close();
    if (peer_fd >= 0) ::close(peer_fd);
  }

  void write_peer(const std::string& bytes) {
    REQUIRE(::write(peer_fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }

  /// True once the session's end is closed: the peer reads end of stream.
  bool peer_sees_end() {
    char byte;
    const ssize_t n = ::recv(peer_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
  }

  void run_ready() {
    while (io.poll() > 0) {
    }
  }

  /// Everything the session sent so far, as lines.
  std::vector<std::string> take_lines() {
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(peer_fd, buffer, sizeof buffer);
      if (n <= 0) break;
      pending.append(buffer, static_cast<std::size_t>(n));
    }
    std::vector<std::string> lines;
    for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
      lines.push_back(pending.substr(0, end));
      pending.erase(0, end + 1);
    }
    return lines;
  }
  std::string pending;
};

}  // namespace

TEST_CASE_METHOD(SessionFixture, "a peer that does not read is not read either, and is not dropped") {
  std::string requests;
  for (int id = 1; id <= 200; ++id) requests += "{\"id\":" + std::to_string(id) + ",\"op\":\"big\"}\n";
  REQUIRE(::write(peer_fd, requests.data(), requests.size()) == static_cast<ssize_t>(requests.size()));
  run_ready();
  // 200 replies of 100 KiB would be 20 MB queued; lpd stopped taking
  // requests once about a congestion mark's worth waited for the peer
  // (beside what the kernel's socket buffers hold).
  CHECK(calls < 30);
  CHECK_FALSE(closed);

  // The peer reads at last: the rest are answered, in order, none lost.
  // Each round moves bytes the kernel already holds: no waiting involved.
  std::vector<int> ids;
  for (int round = 0; round < 10'000 && ids.size() < 200; ++round) {
    for (const auto& line : take_lines()) ids.push_back(json::parse(line)["id"].get<int>());
    run_ready();
  }
  REQUIRE(ids.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(ids[static_cast<std::size_t>(i)] == i + 1);
  CHECK(calls == 200);
  CHECK_FALSE(closed);
}

TEST_CASE_METHOD(SessionFixture, "a connection holds a bounded number of streams; a slot comes back when its stream ends") {
  std::vector<ReplySink::StreamSlot> slots;
  for (std::size_t i = 0; i < Session::kMaxStreams; ++i) slots.push_back(session->claim_stream("test stream"));
  try {
    session->claim_stream("one more");
    FAIL("must refuse");
  } catch (const lpd::protocol::Error& e) {
    CHECK(e.code() == ErrorCode::kLimitExceeded);
    CHECK(std::string(e.what()).find("one more") != std::string::npos);
  }
  slots.pop_back();
  CHECK_NOTHROW(slots.push_back(session->claim_stream("again")));
}

TEST_CASE_METHOD(SessionFixture, "when_drained never runs inside the call, and runs once the queue drained") {
  int resumed = 0;
  session->when_drained([&] { ++resumed; });
  CHECK(resumed == 0);
  run_ready();
  CHECK(resumed == 1);

  std::string requests;
  for (int id = 1; id <= 40; ++id) requests += "{\"id\":" + std::to_string(id) + ",\"op\":\"big\"}\n";
  REQUIRE(::write(peer_fd, requests.data(), requests.size()) == static_cast<ssize_t>(requests.size()));
  run_ready();
  REQUIRE(calls < 40);  // input paused: replies wait for the peer
  session->when_drained([&] { ++resumed; });
  run_ready();
  CHECK(resumed == 1);  // still congested: nobody read
  for (int round = 0; round < 1000 && resumed == 1; ++round) {
    take_lines();
    run_ready();
  }
  CHECK(resumed == 2);
}

// -- issue 13, connection layer: end of stream means "no more requests" --

TEST_CASE_METHOD(SessionFixture, "after a half-close, queued and deferred replies are delivered, then the session closes") {
  write_peer("{\"id\":1,\"op\":\"ping\"}\n{\"id\":2,\"op\":\"later\"}\n{\"id\":3,\"op\":\"ping\"}\n");
  REQUIRE(::shutdown(peer_fd, SHUT_WR) == 0);
  run_ready();
  auto lines = take_lines();
  REQUIRE(lines.size() == 2);
  CHECK(json::parse(lines[0])["id"] == 1);
  CHECK(json::parse(lines[1])["id"] == 3);
  // The deferred reply is still owed: the session waits for it.
  CHECK(session->input_ended());
  CHECK(session->owed_replies() == 1);
  CHECK_FALSE(closed);
  CHECK(session->open());
  REQUIRE(deferred.size() == 1);
  CHECK(deferred[0].connected());

  deferred[0].ok({{"late", true}});
  run_ready();
  lines = take_lines();
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0])["id"] == 2);
  CHECK(json::parse(lines[0])["result"]["late"] == true);
  CHECK(closed);
  CHECK(peer_sees_end());
}

TEST_CASE_METHOD(SessionFixture, "a half-closed session with nothing owed closes once its replies are written") {
  std::string requests;
  for (int id = 1; id <= 200; ++id) requests += "{\"id\":" + std::to_string(id) + ",\"op\":\"big\"}\n";
  write_peer(requests);
  REQUIRE(::shutdown(peer_fd, SHUT_WR) == 0);
  run_ready();
  CHECK(calls < 30);  // congested: the rest wait in the socket, behind the end of stream
  CHECK_FALSE(closed);
  std::vector<int> ids;
  for (int round = 0; round < 10'000 && !closed; ++round) {
    for (const auto& line : take_lines()) ids.push_back(json::parse(line)["id"].get<int>());
    run_ready();
  }
  for (const auto& line : take_lines()) ids.push_back(json::parse(line)["id"].get<int>());
  REQUIRE(ids.size() == 200);
  for (int i = 0; i < 200; ++i) CHECK(ids[static_cast<std::size_t>(i)] == i + 1);
  CHECK(closed);
  CHECK(peer_sees_end());
}

TEST_CASE_METHOD(SessionFixture, "a peer that closed both ways is let go at once, owed replies or not") {
  write_peer("{\"id\":1,\"op\":\"later\"}\n");
  ::close(peer_fd);
  peer_fd = -1;
  run_ready();
  CHECK(closed);
  REQUIRE(deferred.size() == 1);
  CHECK_FALSE(deferred[0].connected());
}

TEST_CASE_METHOD(SessionFixture, "a half-closed peer that then closes is let go while a reply is still owed") {
  write_peer("{\"id\":1,\"op\":\"later\"}\n");
  REQUIRE(::shutdown(peer_fd, SHUT_WR) == 0);
  run_ready();
  CHECK_FALSE(closed);
  ::close(peer_fd);
  peer_fd = -1;
  run_ready();
  CHECK(closed);
}

TEST_CASE_METHOD(SessionFixture, "an owed reply that nobody will send any more does not hold the session") {
  write_peer("{\"id\":1,\"op\":\"later\"}\n{\"id\":2,\"op\":\"later\"}\n");
  REQUIRE(::shutdown(peer_fd, SHUT_WR) == 0);
  run_ready();
  REQUIRE(deferred.size() == 2);
  CHECK(session->owed_replies() == 2);
  // A copy answers: the one reply is paid, whichever copy sent it.
  Responder copy = deferred[0];
  copy.fail(ErrorCode::kConflict, "no");
  run_ready();
  CHECK(session->owed_replies() == 1);
  CHECK_FALSE(closed);
  deferred.clear();  // the other is dropped unanswered (its operation was abandoned)
  run_ready();
  CHECK(session->owed_replies() == 0);
  CHECK(closed);
  auto lines = take_lines();
  REQUIRE(lines.size() == 1);
  CHECK(json::parse(lines[0])["error"]["code"] == "conflict");
}

TEST_CASE_METHOD(SessionFixture, "notifications and immediate replies owe nothing") {
  write_peer("{\"op\":\"later\"}\n{\"id\":1,\"op\":\"ping\"}\n");
  run_ready();
  CHECK(session->owed_replies() == 0);
  CHECK(take_lines().size() == 1);
}
