#include "daemon/core/event_ring_mapping.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/unique_fd.h"
#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

std::unique_ptr<MappedEventRing> MappedEventRing::map(int fd) {
  const UniqueFd owned(fd);  // the mapping outlives the descriptor
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(ErrorCode::kBadRequest, "the event ring must be a memfd (got something that is not a file)");
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) throw Error(ErrorCode::kBadRequest, "the event ring must be a memfd created with MFD_ALLOW_SEALING");
  if (!(seals & F_SEAL_SHRINK)) throw Error(ErrorCode::kBadRequest, "the event ring's memfd must carry F_SEAL_SHRINK");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (auto why = protocol::EventRingReader::check_size(size)) throw Error(ErrorCode::kBadRequest, *why);
  void* memory = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (memory == MAP_FAILED)
    throw Error(ErrorCode::kBadRequest, std::string("cannot map the event ring: ") + std::strerror(errno));
  std::span<std::byte> span(static_cast<std::byte*>(memory), size);
  try {
    return std::unique_ptr<MappedEventRing>(new MappedEventRing(span));
  } catch (...) {
    ::munmap(memory, size);
    throw;
  }
}

MappedEventRing::MappedEventRing(std::span<std::byte> memory) : memory_(memory), reader_(memory) {}

MappedEventRing::~MappedEventRing() { ::munmap(memory_.data(), memory_.size()); }

}  // namespace lpd::daemon
