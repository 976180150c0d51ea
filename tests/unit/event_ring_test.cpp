#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.h"
#include "protocol/event_ring.h"

using lpd::protocol::Error;
using lpd::protocol::ErrorCode;
using lpd::protocol::EventRingReader;
namespace ring = lpd::protocol::event_ring;

namespace {

/// A ring in ordinary memory, 8-byte aligned (a vector of u64 words), with
/// a test-local producer that follows the layout in event_ring.h: header
/// words, then records (u32 length + bytes) wrapping byte-wise at the end.
struct TestRing {
  std::vector<std::uint64_t> words;
  std::size_t capacity;

  explicit TestRing(std::size_t capacity_bytes, std::uint64_t start_position = 0)
      : words((ring::kHeaderBytes + capacity_bytes) / sizeof(std::uint64_t), 0), capacity(capacity_bytes) {
    set_u32(ring::kMagicOffset, ring::kMagic);
    set_u32(ring::kVersionOffset, ring::kVersion);
    set_u64(ring::kWriteOffset, start_position);
    set_u64(ring::kReadOffset, start_position);
  }

  std::span<std::byte> memory() { return std::as_writable_bytes(std::span<std::uint64_t>(words)); }
  std::byte* data() { return memory().data() + ring::kHeaderBytes; }

  void set_u32(std::size_t offset, std::uint32_t value) { std::memcpy(memory().data() + offset, &value, sizeof value); }
  void set_u64(std::size_t offset, std::uint64_t value) { std::memcpy(memory().data() + offset, &value, sizeof value); }
  std::uint64_t u64(std::size_t offset) {
    std::uint64_t value = 0;
    std::memcpy(&value, memory().data() + offset, sizeof value);
    return value;
  }
  std::uint64_t write_position() { return u64(ring::kWriteOffset); }
  std::uint64_t read_position() { return u64(ring::kReadOffset); }

  /// Copies bytes to ring position `position` and on, wrapping byte by byte.
  void put(std::uint64_t position, const void* bytes, std::size_t n) {
    const auto* in = static_cast<const std::byte*>(bytes);
    for (std::size_t i = 0; i < n; ++i) data()[(position + i) % capacity] = in[i];
  }

  /// Writes a length field and payload at the write position, then moves it.
  void append_with_length(std::uint32_t length, std::string_view payload) {
    std::uint64_t position = write_position();
    put(position, &length, sizeof length);
    put(position + sizeof length, payload.data(), payload.size());
    set_u64(ring::kWriteOffset, position + sizeof length + payload.size());
  }
  void append(std::string_view record) { append_with_length(static_cast<std::uint32_t>(record.size()), record); }
};

struct DrainResult {
  EventRingReader::Drained drained;
  std::vector<std::string> records;
};

DrainResult drain(EventRingReader& reader) {
  DrainResult result;
  result.drained = reader.drain([&](std::string_view record) { result.records.emplace_back(record); });
  return result;
}

/// Constructs a reader over `memory` and returns the Error it must throw.
Error construction_error(std::span<std::byte> memory) {
  try {
    EventRingReader reader(memory);
  } catch (const Error& e) {
    return e;
  }
  FAIL("EventRingReader accepted the memory");
  return Error(ErrorCode::kInternal, "unreachable");
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("event ring: check_size accepts only a header plus a power-of-two data area in range") {
  SECTION("no bigger than the header") {
    for (std::size_t total : {std::size_t{0}, std::size_t{1}, ring::kHeaderBytes - 1, ring::kHeaderBytes}) {
      auto why = EventRingReader::check_size(total);
      REQUIRE(why.has_value());
      CHECK(contains(*why, "smaller than its header"));
    }
  }
  SECTION("data area not a power of two") {
    for (std::size_t capacity : {std::size_t{5000}, std::size_t{4096 + 1}, std::size_t{3 * 4096}}) {
      auto why = EventRingReader::check_size(ring::kHeaderBytes + capacity);
      REQUIRE(why.has_value());
      CHECK(contains(*why, "power of two"));
    }
    // The whole region a power of two is not enough: the data area is what counts.
    CHECK(EventRingReader::check_size(8192).has_value());
  }
  SECTION("below the minimum capacity") {
    CHECK(EventRingReader::check_size(ring::kHeaderBytes + ring::kMinCapacity / 2).has_value());
    CHECK(EventRingReader::check_size(ring::kHeaderBytes + 64).has_value());
    CHECK(EventRingReader::check_size(ring::kHeaderBytes + 1).has_value());
  }
  SECTION("above the maximum capacity") {
    auto why = EventRingReader::check_size(ring::kHeaderBytes + ring::kMaxCapacity * 2);
    REQUIRE(why.has_value());
    CHECK(contains(*why, std::to_string(ring::kMaxCapacity)));
  }
  SECTION("valid sizes") {
    CHECK_FALSE(EventRingReader::check_size(ring::kHeaderBytes + ring::kMinCapacity).has_value());
    CHECK_FALSE(EventRingReader::check_size(ring::kHeaderBytes + 256 * 1024).has_value());
    CHECK_FALSE(EventRingReader::check_size(ring::kHeaderBytes + ring::kMaxCapacity).has_value());
  }
}

TEST_CASE("event ring: the constructor rejects a region that is not a ring") {
  SECTION("bad size") {
    TestRing r(4096);
    auto e = construction_error(r.memory().first(ring::kHeaderBytes + 1000));
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "power of two"));
  }
  SECTION("bad magic") {
    TestRing r(4096);
    r.set_u32(ring::kMagicOffset, 0x4C504452);  // "RDPL": the right letters, wrong order
    auto e = construction_error(r.memory());
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "LPDR"));
  }
  SECTION("all zeroes") {
    TestRing r(4096);
    std::fill(r.words.begin(), r.words.end(), 0);
    auto e = construction_error(r.memory());
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "LPDR"));
  }
  SECTION("bad version") {
    TestRing r(4096);
    r.set_u32(ring::kVersionOffset, 2);
    auto e = construction_error(r.memory());
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "ring version 2"));
  }
  SECTION("write position more than a capacity ahead of the read position") {
    TestRing r(4096);
    r.set_u64(ring::kWriteOffset, 4096 + 1);
    auto e = construction_error(r.memory());
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "inconsistent"));
  }
  SECTION("write position behind the read position") {
    TestRing r(4096, 1000);
    r.set_u64(ring::kWriteOffset, 999);
    auto e = construction_error(r.memory());
    CHECK(e.code() == ErrorCode::kBadRequest);
    CHECK(contains(e.what(), "inconsistent"));
  }
  SECTION("memory not 8-byte aligned") {
    TestRing r(4096 * 2);
    auto shifted = r.memory().subspan(4, ring::kHeaderBytes + 4096);
    std::uint32_t magic = ring::kMagic, version = ring::kVersion;
    std::memcpy(shifted.data(), &magic, sizeof magic);
    std::memcpy(shifted.data() + 4, &version, sizeof version);
    auto e = construction_error(shifted);
    CHECK(e.code() == ErrorCode::kInternal);
  }
}

TEST_CASE("event ring: a full ring (write exactly a capacity ahead) is consistent and drains") {
  TestRing r(4096);
  const std::string big(4096 - 4, 'f');
  r.append(big);
  REQUIRE(r.write_position() == 4096);
  EventRingReader reader(r.memory());
  CHECK(reader.capacity() == 4096);
  auto result = drain(reader);
  CHECK_FALSE(result.drained.error.has_value());
  CHECK(result.drained.records == 1);
  REQUIRE(result.records.size() == 1);
  CHECK(result.records[0] == big);
  CHECK(r.read_position() == 4096);
}

TEST_CASE("event ring: draining an empty ring hands over nothing") {
  TestRing r(4096);
  EventRingReader reader(r.memory());
  CHECK(reader.capacity() == 4096);
  CHECK(reader.read_position() == 0);
  int calls = 0;
  auto drained = reader.drain([&](std::string_view) { ++calls; });
  CHECK(drained.records == 0);
  CHECK_FALSE(drained.error.has_value());
  CHECK(calls == 0);
  CHECK(reader.read_position() == 0);
  CHECK(r.read_position() == 0);
  // Twice is still nothing.
  auto again = drain(reader);
  CHECK(again.drained.records == 0);
  CHECK_FALSE(again.drained.error.has_value());
}

TEST_CASE("event ring: records come out whole and in order, and the read position is published") {
  TestRing r(4096);
  const std::vector<std::string> sent = {
      R"({"op":"test.start","nodeid":"a.py::t1"})",
      R"({"op":"test.finish","nodeid":"a.py::t1","outcome":"passed"})",
      "x",
      std::string(1000, 'y'),
  };
  std::uint64_t expected_position = 0;
  for (const auto& s : sent) {
    r.append(s);
    expected_position += 4 + s.size();
  }
  REQUIRE(r.write_position() == expected_position);

  EventRingReader reader(r.memory());
  auto result = drain(reader);
  CHECK_FALSE(result.drained.error.has_value());
  CHECK(result.drained.records == sent.size());
  CHECK(result.records == sent);
  CHECK(reader.read_position() == expected_position);
  CHECK(r.read_position() == expected_position);

  SECTION("later records are read by the next drain, earlier ones not again") {
    r.append("later-1");
    r.append("later-2");
    auto next = drain(reader);
    CHECK_FALSE(next.drained.error.has_value());
    CHECK(next.drained.records == 2);
    CHECK(next.records == std::vector<std::string>{"later-1", "later-2"});
    CHECK(r.read_position() == expected_position + 2 * (4 + 7));
  }
  SECTION("a record of exactly kMaxRecordBytes is accepted") {
    TestRing large(128 * 1024);
    const std::string max_record(ring::kMaxRecordBytes, 'm');
    large.append(max_record);
    EventRingReader large_reader(large.memory());
    auto got = drain(large_reader);
    CHECK_FALSE(got.drained.error.has_value());
    REQUIRE(got.records.size() == 1);
    CHECK(got.records[0] == max_record);
  }
}

TEST_CASE("event ring: a record wrapping around the end of the data area is reassembled") {
  constexpr std::size_t kCapacity = 4096;

  SECTION("the payload wraps") {
    // Start 3 capacities in, 10 bytes before the end: the length fits, the
    // payload's first 6 bytes are at the end, the rest at the start.
    const std::uint64_t start = 3 * kCapacity + kCapacity - 10;
    TestRing r(kCapacity, start);
    const std::string record = "0123456789abcdef";
    r.append(record);
    CHECK(std::memcmp(r.data() + kCapacity - 6, "012345", 6) == 0);
    CHECK(std::memcmp(r.data(), "6789abcdef", 10) == 0);
    r.append("after");  // starts at data[10]

    EventRingReader reader(r.memory());
    CHECK(reader.read_position() == start);
    auto result = drain(reader);
    CHECK_FALSE(result.drained.error.has_value());
    CHECK(result.drained.records == 2);
    CHECK(result.records == std::vector<std::string>{record, "after"});
    CHECK(r.read_position() == start + 4 + record.size() + 4 + 5);
  }

  for (std::size_t before_end : {std::size_t{1}, std::size_t{2}, std::size_t{3}}) {
    DYNAMIC_SECTION("the length field is split: " << before_end << " byte(s) of it before the end") {
      const std::uint64_t start = kCapacity - before_end;
      TestRing r(kCapacity, start);
      const std::string record = "split-length-record";
      r.append(record);
      // The length's low bytes are at the end, its high bytes (zero) at the start.
      CHECK(static_cast<std::size_t>(r.data()[kCapacity - before_end]) == record.size());
      CHECK(std::memcmp(r.data() + (4 - before_end), record.data(), record.size()) == 0);

      EventRingReader reader(r.memory());
      auto result = drain(reader);
      CHECK_FALSE(result.drained.error.has_value());
      CHECK(result.drained.records == 1);
      CHECK(result.records == std::vector<std::string>{record});
      CHECK(r.read_position() == start + 4 + record.size());
    }
  }

  SECTION("the length ends exactly at the end and the payload starts at data[0]") {
    TestRing r(kCapacity, kCapacity - 4);
    r.append("at-start");
    CHECK(std::memcmp(r.data(), "at-start", 8) == 0);
    EventRingReader reader(r.memory());
    auto result = drain(reader);
    CHECK_FALSE(result.drained.error.has_value());
    CHECK(result.records == std::vector<std::string>{"at-start"});
  }

  SECTION("many laps around the ring, one drain per lap") {
    TestRing r(kCapacity);
    EventRingReader reader(r.memory());
    std::size_t total = 0;
    for (int lap = 0; lap < 20; ++lap) {
      std::vector<std::string> sent;
      for (int i = 0; i < 7; ++i) sent.push_back("lap " + std::to_string(lap) + " " + std::string(97 + i * 13, static_cast<char>('a' + i)));
      for (const auto& s : sent) r.append(s);
      auto result = drain(reader);
      REQUIRE_FALSE(result.drained.error.has_value());
      REQUIRE(result.records == sent);
      total += result.drained.records;
      CHECK(r.read_position() == r.write_position());
    }
    CHECK(total == 140);
    CHECK(r.read_position() > 4 * kCapacity);  // about 20 KiB through a 4 KiB ring
  }
}

TEST_CASE("event ring: a new reader on the same memory resumes at the published read position") {
  TestRing r(4096);
  r.append("first");
  r.append("second");
  std::uint64_t published = 0;
  {
    EventRingReader old_reader(r.memory());
    auto result = drain(old_reader);
    CHECK(result.records == std::vector<std::string>{"first", "second"});
    published = old_reader.read_position();
    CHECK(published == 4 + 5 + 4 + 6);
    CHECK(r.read_position() == published);
  }
  r.append("third");  // written while no reader held the ring

  EventRingReader new_reader(r.memory());
  CHECK(new_reader.read_position() == published);
  auto result = drain(new_reader);
  CHECK_FALSE(result.drained.error.has_value());
  CHECK(result.drained.records == 1);
  CHECK(result.records == std::vector<std::string>{"third"});
  CHECK(r.read_position() == published + 4 + 5);
}

TEST_CASE("event ring: corrupt rings are reported, and what came before the damage is delivered") {
  TestRing r(4096);
  r.append("good-1");
  EventRingReader reader(r.memory());
  auto first = drain(reader);
  REQUIRE(first.records == std::vector<std::string>{"good-1"});
  const std::uint64_t after_first = 4 + 6;
  REQUIRE(r.read_position() == after_first);

  SECTION("write position moved backwards") {
    r.set_u64(ring::kWriteOffset, after_first - 4);
    auto result = drain(reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "write position"));
    CHECK(result.drained.records == 0);
    CHECK(result.records.empty());
    CHECK(reader.read_position() == after_first);
  }
  SECTION("write position more than a capacity ahead") {
    r.set_u64(ring::kWriteOffset, after_first + 4096 + 1);
    auto result = drain(reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "write position"));
    CHECK(result.drained.records == 0);
  }
  SECTION("length 0") {
    r.append("good-2");
    r.append_with_length(0, "");
    r.append("never");
    auto result = drain(reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "impossible length (0)"));
    CHECK(result.drained.records == 1);
    CHECK(result.records == std::vector<std::string>{"good-2"});
    // The good record's space is released; the bad one is not consumed.
    CHECK(r.read_position() == after_first + 4 + 6);
  }
  SECTION("length above kMaxRecordBytes, with all its bytes written") {
    TestRing big(256 * 1024);
    big.append("good");
    const std::string too_long(ring::kMaxRecordBytes + 1, 'z');
    big.append(too_long);
    EventRingReader big_reader(big.memory());
    auto result = drain(big_reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "impossible length (" + std::to_string(ring::kMaxRecordBytes + 1) + ")"));
    CHECK(result.drained.records == 1);
    CHECK(result.records == std::vector<std::string>{"good"});
    CHECK(big.read_position() == 4 + 4);
  }
  SECTION("length past the write position") {
    r.append_with_length(100, std::string(50, 'p'));  // claims 100, 50 written
    auto result = drain(reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "impossible length (100)"));
    CHECK(result.drained.records == 0);
    CHECK(r.read_position() == after_first);
  }
  SECTION("length one past the write position") {
    r.append_with_length(11, std::string(10, 'q'));
    auto result = drain(reader);
    REQUIRE(result.drained.error.has_value());
    CHECK(contains(*result.drained.error, "impossible length (11)"));
    CHECK(result.drained.records == 0);
  }
  for (std::uint64_t partial : {1u, 2u, 3u}) {
    DYNAMIC_SECTION("the ring ends " << partial << " byte(s) into a length field") {
      r.append("good-3");
      const std::uint32_t length = 5;
      r.put(r.write_position(), &length, sizeof length);
      r.set_u64(ring::kWriteOffset, r.write_position() + partial);
      auto result = drain(reader);
      REQUIRE(result.drained.error.has_value());
      CHECK(contains(*result.drained.error, "ends inside a record's length"));
      CHECK(result.drained.records == 1);
      CHECK(result.records == std::vector<std::string>{"good-3"});
      CHECK(r.read_position() == after_first + 4 + 6);
    }
  }
}

TEST_CASE("event ring: a record's bytes are copied out before the callback sees them") {
  // The producer may scribble while lpd reads: the callback gets lpd's own
  // copy, so changing the shared memory afterwards cannot change it.
  TestRing r(4096);
  r.append("stable");
  EventRingReader reader(r.memory());
  std::string seen;
  auto drained = reader.drain([&](std::string_view record) {
    std::memset(r.data(), 'X', 4 + 6);  // overwrite length and payload in shared memory
    seen = std::string(record);
  });
  CHECK_FALSE(drained.error.has_value());
  CHECK(drained.records == 1);
  CHECK(seen == "stable");
}

TEST_CASE("event ring: skip_to passes over the records a previous reader's journal holds, and no more") {
  TestRing r(4096);
  r.append("a");  // 0..5
  r.append("b");  // 5..10
  r.append("c");  // 10..15
  SECTION("records beginning before the mark are passed over; the read commits past them") {
    EventRingReader reader(r.memory());
    REQUIRE(reader.skip_to(10));
    auto result = drain(reader);
    CHECK(result.records == std::vector<std::string>{"c"});
    CHECK(result.drained.skipped == 2);
    CHECK(result.drained.records == 1);
    CHECK(r.read_position() == 15);
    r.append("d");  // the skip is over: later records are all read
    CHECK(drain(reader).records == std::vector<std::string>{"d"});
  }
  SECTION("a mark at or before the read position, or past the write position, is not this ring's") {
    r.set_u64(ring::kReadOffset, 5);
    EventRingReader reader(r.memory());
    CHECK_FALSE(reader.skip_to(5));
    CHECK_FALSE(reader.skip_to(3));
    CHECK_FALSE(reader.skip_to(16));
    CHECK(drain(reader).records == std::vector<std::string>{"b", "c"});
  }
  SECTION("a mark inside a record passes over that record too") {
    EventRingReader reader(r.memory());
    REQUIRE(reader.skip_to(7));
    CHECK(drain(reader).records == std::vector<std::string>{"c"});
  }
  SECTION("a mark at the write position skips everything written so far, and only that") {
    EventRingReader reader(r.memory());
    REQUIRE(reader.skip_to(15));
    auto result = drain(reader);
    CHECK(result.records.empty());
    CHECK(result.drained.skipped == 3);
    r.append("e");
    CHECK(drain(reader).records == std::vector<std::string>{"e"});
  }
}

TEST_CASE("event ring: the ring id is lpd's word in the header, 0 until lpd names the ring") {
  TestRing r(4096);
  EventRingReader reader(r.memory());
  CHECK(reader.ring_id() == 0);
  reader.set_ring_id(0x1234abcd5678ef90ull);
  CHECK(r.u64(ring::kRingIdOffset) == 0x1234abcd5678ef90ull);
  EventRingReader again(r.memory());  // a restarted lpd handed the same ring
  CHECK(again.ring_id() == 0x1234abcd5678ef90ull);
}
