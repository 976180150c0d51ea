#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <boost/asio/io_context.hpp>

#include "daemon/transport/session.h"
#include "daemon/transport/unfinished_lines.h"

using namespace lpd::daemon;

TEST_CASE("one user's unfinished lines are counted over their connections, each user apart") {
  UnfinishedLines lines(100);
  CHECK(lines.hold(1000, 0, 60));
  CHECK(lines.hold(1000, 0, 40));       // a second connection: 100 in all
  CHECK_FALSE(lines.hold(1000, 0, 1));  // a third goes past: refused, nothing counted
  CHECK(lines.held(1000) == 100);
  CHECK(lines.hold(1001, 0, 100));  // another user has a share of their own
  CHECK(lines.hold(1000, 60, 10));  // a line ended: shrinking always succeeds
  CHECK(lines.held(1000) == 50);
  CHECK(lines.hold(1000, 40, 90));  // that room is anyone's of that user now
  CHECK_FALSE(lines.hold(1000, 90, 91));
  CHECK(lines.held(1000) == 100);   // the refused growth kept what was counted
  lines.release(1000, 90);
  lines.release(1000, 10);
  CHECK(lines.held(1000) == 0);
  CHECK(lines.hold(0, 0, 1'000'000));  // root is not counted
  CHECK(lines.held(0) == 0);
}

namespace {

/// A Session of uid 1000 over a socketpair, counted in `lines`, driven by
/// io_context::poll().
struct CountedSession {
  int peer_fd = -1;
  bool closed = false;
  std::shared_ptr<Session> session;

  CountedSession(boost::asio::io_context& io, Dispatcher& dispatcher, UnfinishedLines& lines) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    peer_fd = fds[1];
    ::fcntl(peer_fd, F_SETFL, O_NONBLOCK);
    Session::Socket socket(io, boost::asio::local::stream_protocol(), fds[0]);
    socket.non_blocking(true);
    Peer peer;
    peer.uid = 1000;
    peer.said_hello = true;
    session = std::make_shared<Session>(std::move(socket), peer, dispatcher, std::chrono::milliseconds(60'000),
                                        [this](Session&) { closed = true; }, nullptr, &lines);
    session->start();
  }
  ~CountedSession() {
    if (session) session->close();
    ::close(peer_fd);
  }
  void write(const std::string& bytes) {
    REQUIRE(::write(peer_fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  std::string read_all() {
    std::string got;
    char buffer[4096];
    for (ssize_t n; (n = ::read(peer_fd, buffer, sizeof buffer)) > 0;) got.append(buffer, static_cast<std::size_t>(n));
    return got;
  }
};

}  // namespace

TEST_CASE("a connection that takes its user past the unfinished-line share is told so and closed; the others go on") {
  boost::asio::io_context io;
  Dispatcher dispatcher{std::vector<Operation>{
      {"ping", "", Gate::kOpen, [](Call&) { return json{{"pong", true}}; }},
  }};
  UnfinishedLines lines(10'000);
  CountedSession first(io, dispatcher, lines);
  CountedSession second(io, dispatcher, lines);
  const auto run_ready = [&] {
    while (io.poll() > 0) {
    }
  };

  first.write("{\"id\":1,\"op\":\"ping\",\"pad\":\"" + std::string(6'000, 'a'));
  run_ready();
  CHECK(lines.held(1000) > 6'000);
  second.write("{\"id\":2,\"op\":\"ping\",\"pad\":\"" + std::string(6'000, 'b'));
  run_ready();

  // The second went past 10,000 bytes: one limit_exceeded line, then closed,
  // and what it held is no longer counted.
  CHECK(second.closed);
  const std::string said = second.read_all();
  CHECK(said.find("\"limit_exceeded\"") != std::string::npos);
  CHECK(said.find("not yet ended by a newline") != std::string::npos);
  CHECK(lines.held(1000) < 7'000);

  // The first ends its line and is answered as usual.
  first.write("\"}\n");
  run_ready();
  CHECK_FALSE(first.closed);
  CHECK(first.read_all().find("\"pong\":true") != std::string::npos);
  CHECK(lines.held(1000) == 0);
}
