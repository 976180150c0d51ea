#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

namespace lpd::daemon {

class MappedEventRing;

/// Peer is who is on the other end of one connection: the kernel's word on
/// uid/gid/pid (SO_PEERCRED, taken at accept, never from the peer's own
/// claims) plus what the peer said about itself in `hello`.
struct Peer {
  std::uint64_t session_id = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)

  bool said_hello = false;
  std::string role;       // "cli", "shim", ... as declared in hello; informative only
  std::string client_name;  // free text from hello, shown in logs
  /// The event ring this connection attached (ring.attach), while lpd reads it.
  std::shared_ptr<MappedEventRing> ring;
};

}  // namespace lpd::daemon
