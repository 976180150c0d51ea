#pragma once

#include <memory>
#include <span>

#include "protocol/event_ring.h"

namespace lpd::daemon {

/// MappedEventRing is a shim's event ring mapped into lpd: the I/O edge of
/// protocol::EventRingReader. The memory stays mapped until it is destroyed.
class MappedEventRing {
 public:
  /// Maps the ring behind `fd` (a shim's memfd, passed with SCM_RIGHTS) and
  /// closes `fd`. Throws protocol::Error (bad_request) for anything but a
  /// sealed memfd of a valid ring size: a file that could shrink under the
  /// mapping would kill lpd with SIGBUS.
  static std::unique_ptr<MappedEventRing> map(int fd);
  ~MappedEventRing();
  MappedEventRing(const MappedEventRing&) = delete;
  MappedEventRing& operator=(const MappedEventRing&) = delete;

  protocol::EventRingReader& reader() { return reader_; }

 private:
  explicit MappedEventRing(std::span<std::byte> memory);
  std::span<std::byte> memory_;
  protocol::EventRingReader reader_;
};

}  // namespace lpd::daemon
