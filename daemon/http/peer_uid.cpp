// the local user on the other end of a loopback TCP connection.
#include "daemon/http/peer_uid.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/core/unique_fd.h"

namespace lpd::daemon::http {
namespace {

/// /proc/net/tcp6 of a few thousand sockets is well under this.
constexpr std::size_t kMaxProcNetBytes = 16 * 1024 * 1024;

std::string_view next_proc_net_field(std::string_view& line) {
  const auto start = line.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    line = {};
    return {};
  }
  line.remove_prefix(start);
  const auto end = line.find(' ');
  const std::string_view field = line.substr(0, end);
  line.remove_prefix(end == std::string_view::npos ? line.size() : end);
  return field;
}

bool is_loopback(const TcpEnd& end) {
  if (!end.v6) return end.address[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (end.address == kLoopback6) return true;
  // ::ffff:127.x.y.z
  for (int i = 0; i < 10; ++i)
    if (end.address[static_cast<std::size_t>(i)] != 0) return false;
  return end.address[10] == 0xff && end.address[11] == 0xff && end.address[12] == 127;
}

}  // namespace

std::string proc_net_address(const TcpEnd& end) {
  std::string out;
  char word[16];
  const std::size_t words = end.v6 ? 4 : 1;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint32_t value = 0;
    std::memcpy(&value, end.address.data() + 4 * i, 4);  // as the kernel's %08X of the in-memory word
    std::snprintf(word, sizeof(word), "%08X", value);
    out += word;
  }
  std::snprintf(word, sizeof(word), ":%04X", static_cast<unsigned>(end.port));
  out += word;
  return out;
}

std::optional<uid_t> socket_owner_in(std::string_view text, const TcpEnd& peer, const TcpEnd& ours) {
  const std::string local = proc_net_address(peer);
  const std::string remote = proc_net_address(ours);
  while (!text.empty()) {
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    next_proc_net_field(line);  // sl
    if (next_proc_net_field(line) != local || next_proc_net_field(line) != remote) continue;
    // st tx_queue:rx_queue tr:tm->when retrnsmt uid
    for (int i = 0; i < 4; ++i) next_proc_net_field(line);
    const std::string_view uid_text = next_proc_net_field(line);
    if (uid_text.empty() || uid_text.size() > 10) return std::nullopt;
    std::uint64_t uid = 0;
    for (char c : uid_text) {
      if (c < '0' || c > '9') return std::nullopt;
      uid = uid * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (uid > 0xFFFFFFFEu) return std::nullopt;
    return static_cast<uid_t>(uid);
  }
  return std::nullopt;
}

std::optional<uid_t> loopback_peer_uid(const TcpEnd& peer, const TcpEnd& ours) {
  if (!is_loopback(peer)) return std::nullopt;
  UniqueFd fd(::open(peer.v6 ? "/proc/net/tcp6" : "/proc/net/tcp", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
    if (text.size() > kMaxProcNetBytes) return std::nullopt;
  }
  return socket_owner_in(text, peer, ours);
}

}  // namespace lpd::daemon::http
