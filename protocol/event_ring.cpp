#include "protocol/event_ring.h"

#include <atomic>
#include <bit>
#include <cstring>

#include "protocol/error.h"

namespace lpd::protocol {

namespace ring = event_ring;

// The layout is little-endian; so is every host lpd builds for.
static_assert(std::endian::native == std::endian::little);

std::optional<PhaseMark> decode_phase_mark(std::uint64_t word) {
  static constexpr std::string_view kPhases[] = {"setup", "call", "teardown"};
  const std::uint64_t code = word & 0xff;
  if (code < 1 || code > 3) return std::nullopt;
  return PhaseMark{word >> 8, kPhases[code - 1]};
}

std::optional<std::string> EventRingReader::check_size(std::size_t total_bytes) {
  if (total_bytes <= ring::kHeaderBytes) return "the ring is smaller than its header";
  const std::size_t capacity = total_bytes - ring::kHeaderBytes;
  if (!std::has_single_bit(capacity) || capacity < ring::kMinCapacity || capacity > ring::kMaxCapacity)
    return "the ring's data must be a power of two from " + std::to_string(ring::kMinCapacity) + " to " +
           std::to_string(ring::kMaxCapacity) + " bytes, after a " + std::to_string(ring::kHeaderBytes) +
           "-byte header";
  return std::nullopt;
}

EventRingReader::EventRingReader(std::span<std::byte> memory)
    : memory_(memory), capacity_(memory.size() - ring::kHeaderBytes), read_(0) {
  if (auto why = check_size(memory.size())) throw Error(ErrorCode::kBadRequest, *why);
  if (reinterpret_cast<std::uintptr_t>(memory.data()) % alignof(std::uint64_t) != 0)
    throw Error(ErrorCode::kInternal, "the ring's memory is not aligned");
  std::uint32_t magic = 0, version = 0;
  std::memcpy(&magic, memory.data() + ring::kMagicOffset, sizeof magic);
  std::memcpy(&version, memory.data() + ring::kVersionOffset, sizeof version);
  if (magic != ring::kMagic) throw Error(ErrorCode::kBadRequest, "the ring does not start with \"LPDR\"");
  if (version != ring::kVersion)
    throw Error(ErrorCode::kBadRequest, "ring version " + std::to_string(version) + " is not supported (want " +
                                            std::to_string(ring::kVersion) + ")");
  read_ = load_position(ring::kReadOffset);
  if (load_position(ring::kWriteOffset) - read_ > capacity_)
    throw Error(ErrorCode::kBadRequest, "the ring's positions are inconsistent");
}

// Another process writes these words concurrently: read and write them
// atomically, with acquire / release so the data written before a position
// is visible once the position is.
std::uint64_t EventRingReader::load_position(std::size_t offset) const {
  auto* word = reinterpret_cast<std::uint64_t*>(memory_.data() + offset);
  return std::atomic_ref<std::uint64_t>(*word).load(std::memory_order_acquire);
}

void EventRingReader::store_position(std::size_t offset, std::uint64_t value) {
  auto* word = reinterpret_cast<std::uint64_t*>(memory_.data() + offset);
  std::atomic_ref<std::uint64_t>(*word).store(value, std::memory_order_release);
}

void EventRingReader::copy_out(std::uint64_t position, std::byte* out, std::size_t n) const {
  const std::byte* data = memory_.data() + ring::kHeaderBytes;
  const std::size_t start = position & (capacity_ - 1);
  const std::size_t first = std::min(n, capacity_ - start);
  std::memcpy(out, data + start, first);
  std::memcpy(out + first, data, n - first);
}

EventRingReader::Drained EventRingReader::drain(const std::function<void(std::string_view)>& on_record,
                                                const std::function<void()>& before_commit) {
  Drained result = read(on_record);
  if (result.records > 0 && before_commit) before_commit();
  commit();
  return result;
}

EventRingReader::Drained EventRingReader::read(const std::function<void(std::string_view)>& on_record) {
  Drained result;
  // Pairs with the shim's fence between publishing a record and reading its
  // clock against the read-by promise: a record published before the time
  // this read starts is seen by it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint64_t write = load_position(ring::kWriteOffset);
  // Unsigned: a position moved backwards shows up as a huge distance.
  if (write - read_ > capacity_) {
    result.error = "the ring's write position " + std::to_string(write) + " is not within " +
                   std::to_string(capacity_) + " bytes after its read position " + std::to_string(read_);
    return result;
  }
  std::string record;
  while (read_ != write) {
    if (write - read_ < sizeof(std::uint32_t)) {
      result.error = "the ring ends inside a record's length";
      break;
    }
    std::uint32_t length = 0;
    copy_out(read_, reinterpret_cast<std::byte*>(&length), sizeof length);
    if (length == 0 || length > ring::kMaxRecordBytes || length > write - read_ - sizeof length) {
      result.error = "a ring record has an impossible length (" + std::to_string(length) + ")";
      break;
    }
    const std::uint64_t begins = read_;
    read_ += sizeof length + length;
    if (begins < skip_to_) {
      ++result.skipped;
      continue;
    }
    record.resize(length);
    copy_out(begins + sizeof length, reinterpret_cast<std::byte*>(record.data()), length);
    record_position_ = begins;
    ++result.records;
    on_record(record);
    record_position_.reset();
  }
  if (read_ >= skip_to_) skip_to_ = 0;
  return result;
}

bool EventRingReader::skip_to(std::uint64_t position) {
  const std::uint64_t write = load_position(ring::kWriteOffset);
  if (position <= read_ || position - read_ > write - read_) return false;
  skip_to_ = position;
  return true;
}

void EventRingReader::commit() { store_position(ring::kReadOffset, read_); }

}  // namespace lpd::protocol
