#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "daemon/transport/fd_passing.h"
#include "daemon/transport/session.h"
#include "tests/unit/descriptor_pressure.h"

using namespace lpd::daemon;
using lpd::test::DescriptorPressure;

namespace {

/// Sends `text` and passes `fds` with it, in one sendmsg, as a shim does.
void send_with_fds(int socket_fd, std::string_view text, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  REQUIRE(::sendmsg(socket_fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

/// A connected pair: lpd's end (non-blocking, as a session's) and the peer's.
struct Pair {
  int lpd = -1;
  int peer = -1;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    lpd = fds[0];
    peer = fds[1];
  }
  ~Pair() {
    if (lpd >= 0) ::close(lpd);
    ::close(peer);
  }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
};

/// A descriptor to pass: one end of a pipe (the other is closed).
int some_fd() {
  int ends[2];
  REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
  ::close(ends[1]);
  return ends[0];
}

void close_all(const std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
}

}  // namespace

TEST_CASE("a passed descriptor arrives with its message, close-on-exec") {
  Pair pair;
  const int fd = some_fd();
  send_with_fds(pair.peer, "attach\n", {fd});
  ::close(fd);
  std::array<char, 64> buffer{};
  const Received received = receive_with_fds(pair.lpd, buffer);
  CHECK(received.bytes == 7);
  REQUIRE(received.fds.size() == 1);
  CHECK_FALSE(received.fds_dropped);
  CHECK((::fcntl(received.fds[0], F_GETFD) & FD_CLOEXEC) != 0);
  close_all(received.fds);
}

TEST_CASE("a descriptor lpd has no slot for is reported dropped; its message still arrives") {
  Pair pair;
  const int fd = some_fd();
  std::array<char, 64> buffer{};
  {
    DescriptorPressure pressure;
    send_with_fds(pair.peer, "attach\n", {fd});
    const Received received = receive_with_fds(pair.lpd, buffer);
    CHECK(received.bytes == 7);
    CHECK(received.fds.empty());
    CHECK(received.fds_dropped);
  }
  // With a free slot the same descriptor comes through.
  send_with_fds(pair.peer, "again\n", {fd});
  ::close(fd);
  const Received received = receive_with_fds(pair.lpd, buffer);
  CHECK(received.bytes == 6);
  CHECK(received.fds.size() == 1);
  CHECK_FALSE(received.fds_dropped);
  close_all(received.fds);
}

TEST_CASE("more descriptors than lpd takes at once: the first arrive, the rest are reported dropped") {
  Pair pair;
  std::vector<int> fds;
  for (int i = 0; i < kMaxPassedFds + 2; ++i) fds.push_back(some_fd());
  send_with_fds(pair.peer, "many\n", fds);
  close_all(fds);
  std::array<char, 64> buffer{};
  const Received received = receive_with_fds(pair.lpd, buffer);
  CHECK(received.bytes == 5);
  CHECK(received.fds.size() == static_cast<std::size_t>(kMaxPassedFds));
  CHECK(received.fds_dropped);
  close_all(received.fds);
}

TEST_CASE("a session tells the handler that its message's descriptor was dropped, and only that message's") {
  boost::asio::io_context io;
  Pair pair;
  struct Seen {
    bool got_fd;
    bool dropped;
  };
  std::vector<Seen> seen;
  Dispatcher dispatcher{std::vector<Operation>{
      {"probe", "", Gate::kOpen, [&seen](Call& call) {
         const int fd = call.sink->take_passed_fd();
         seen.push_back({fd >= 0, call.sink->passed_fd_dropped()});
         if (fd >= 0) ::close(fd);
         return json::object();
       }},
  }};
  Session::Socket socket(io, boost::asio::local::stream_protocol(), pair.lpd);
  pair.lpd = -1;  // the session owns it
  Peer peer;
  peer.said_hello = true;
  auto session = std::make_shared<Session>(std::move(socket), peer, dispatcher, std::chrono::milliseconds(60'000),
                                           [](Session&) {});
  session->start();
  auto run_ready = [&io] {
    while (io.poll() > 0) {
    }
  };
  const int fd = some_fd();
  {
    DescriptorPressure pressure;
    send_with_fds(pair.peer, R"({"id":1,"op":"probe"})" "\n", {fd});
    run_ready();
    REQUIRE(seen.size() == 1);
    CHECK_FALSE(seen[0].got_fd);
    CHECK(seen[0].dropped);
  }
  // The next message passed nothing: nothing was dropped for it.
  send_with_fds(pair.peer, R"({"id":2,"op":"probe"})" "\n", {});
  run_ready();
  REQUIRE(seen.size() == 2);
  CHECK_FALSE(seen[1].got_fd);
  CHECK_FALSE(seen[1].dropped);
  // And one that passes a descriptor with a free slot gets it.
  send_with_fds(pair.peer, R"({"id":3,"op":"probe"})" "\n", {fd});
  ::close(fd);
  run_ready();
  REQUIRE(seen.size() == 3);
  CHECK(seen[2].got_fd);
  CHECK_FALSE(seen[2].dropped);
  session->close();
}
