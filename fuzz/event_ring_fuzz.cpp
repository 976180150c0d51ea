// Fuzz target: the event ring reader (protocol::EventRingReader) over a
// memory image a hostile shim wrote: header and records are the input.
// The image is a heap block of exactly header + capacity bytes, so ASan
// reports any read or write outside it. Between drains the "producer"
// moves the write position again (the shim may scribble at any time).
// Every record handed out goes through parse_message, as lpd's session does.
//
// Contracts checked:
//   - the constructor throws protocol::Error or succeeds;
//   - drain never reads outside the image, hands out records of 1..64 KiB,
//     and the read position only moves forward (or stays on an error);
//   - once drain reports the ring corrupt, the caller stops (as lpd does).
//
// Input: 64 header bytes, then `capacity` data bytes (4 KiB; zero-filled when
// short), then any number of u64 write positions stored between drains.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "protocol/error.h"
#include "protocol/event_ring.h"
#include "protocol/message.h"

namespace {

namespace protocol = lpd::protocol;
namespace ring = protocol::event_ring;

[[noreturn]] void violated(const char* what) {
  __builtin_printf("event_ring invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kCapacity = ring::kMinCapacity;
  constexpr std::size_t kImageBytes = ring::kHeaderBytes + kCapacity;
  // u64 words: the reader requires 8-byte alignment, as mmap gives it.
  std::vector<std::uint64_t> words(kImageBytes / sizeof(std::uint64_t), 0);
  const std::span<std::byte> image = std::as_writable_bytes(std::span<std::uint64_t>(words));
  std::memcpy(image.data(), data, std::min(size, kImageBytes));
  std::span<const std::uint8_t> scribbles;
  if (size > kImageBytes) scribbles = std::span<const std::uint8_t>(data + kImageBytes, size - kImageBytes);

  std::optional<protocol::EventRingReader> reader;
  try {
    reader.emplace(image);
  } catch (const protocol::Error&) {
    return 0;  // refused at attach: fine
  }

  for (;;) {
    const std::uint64_t before = reader->read_position();
    const auto drained = reader->drain([](std::string_view record) {
      if (record.empty() || record.size() > ring::kMaxRecordBytes) violated("a record of impossible size came out");
      try {
        (void)protocol::parse_message(record);
      } catch (const protocol::Error&) {
      }
    });
    if (reader->read_position() - before > kCapacity) violated("the read position jumped past the data");
    if (drained.error) return 0;  // corrupt: lpd detaches the ring here
    if (scribbles.size() < sizeof(std::uint64_t)) return 0;
    std::memcpy(image.data() + ring::kWriteOffset, scribbles.data(), sizeof(std::uint64_t));
    scribbles = scribbles.subspan(sizeof(std::uint64_t));
  }
}
