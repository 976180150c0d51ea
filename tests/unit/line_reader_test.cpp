#include <catch2/catch.hpp>

#include "protocol/line_reader.h"

using lpd::protocol::LineReader;
using Status = LineReader::Status;

TEST_CASE("LineReader splits lines fed in arbitrary chunks") {
  LineReader reader(64);
  reader.feed("{\"a\":1}\n{\"b\"");
  auto first = reader.next();
  REQUIRE(first.status == Status::kLine);
  CHECK(first.line == "{\"a\":1}");
  CHECK(reader.next().status == Status::kNeedMore);
  reader.feed(":2}\r\n\n");
  auto second = reader.next();
  REQUIRE(second.status == Status::kLine);
  CHECK(second.line == "{\"b\":2}");  // CR of a CRLF is dropped
  auto blank = reader.next();
  REQUIRE(blank.status == Status::kLine);
  CHECK(blank.line.empty());
  CHECK(reader.next().status == Status::kNeedMore);
}

TEST_CASE("LineReader reports an endless line once and keeps memory bounded") {
  LineReader reader(16);
  reader.feed(std::string(10, 'x'));
  CHECK(reader.next().status == Status::kNeedMore);
  reader.feed(std::string(10, 'x'));
  CHECK(reader.next().status == Status::kOversized);
  for (int i = 0; i < 100; ++i) {
    reader.feed(std::string(1000, 'y'));
    CHECK(reader.next().status == Status::kNeedMore);
    CHECK(reader.buffered() == 0);
  }
  reader.feed("tail\nok\n");
  auto next = reader.next();
  REQUIRE(next.status == Status::kLine);
  CHECK(next.line == "ok");  // the rest of the oversized line was skipped
}

TEST_CASE("LineReader rejects a complete line over the limit") {
  LineReader reader(4);
  reader.feed("12345\n1234\n");
  CHECK(reader.next().status == Status::kOversized);
  auto next = reader.next();
  REQUIRE(next.status == Status::kLine);
  CHECK(next.line == "1234");
}

TEST_CASE("LineReader accepts a line of exactly the limit") {
  LineReader reader(4);
  reader.feed("1234");
  CHECK(reader.next().status == Status::kNeedMore);
  reader.feed("\n");
  auto next = reader.next();
  REQUIRE(next.status == Status::kLine);
  CHECK(next.line == "1234");
}

TEST_CASE("LineReader gives back the memory a big line took once it is consumed") {
  LineReader reader;
  const std::string big(512 * 1024, 'b');
  reader.feed(big);
  CHECK(reader.next().status == Status::kNeedMore);
  CHECK(reader.capacity() >= big.size());  // still arriving: kept
  reader.feed("\n{\"a\":1}\n{\"partial\"");
  auto line = reader.next();
  REQUIRE(line.status == Status::kLine);
  CHECK(line.line.size() == big.size());
  REQUIRE(reader.next().status == Status::kLine);
  CHECK(reader.next().status == Status::kNeedMore);
  // Only the partial line is left, in a buffer of about its size.
  CHECK(reader.buffered() == std::string("{\"partial\"").size());
  CHECK(reader.capacity() <= LineReader::kKeptCapacity);
  reader.feed(":2}\n");
  auto rest = reader.next();
  REQUIRE(rest.status == Status::kLine);
  CHECK(rest.line == "{\"partial\":2}");
}

TEST_CASE("LineReader frees an oversized line's buffer") {
  LineReader reader(64 * 1024);
  reader.feed(std::string(100 * 1024, 'x'));
  CHECK(reader.next().status == Status::kOversized);
  CHECK(reader.capacity() <= LineReader::kKeptCapacity);
  reader.feed("rest of it\n{}\n");
  auto next = reader.next();
  REQUIRE(next.status == Status::kLine);
  CHECK(next.line == "{}");
  CHECK(reader.capacity() <= LineReader::kKeptCapacity);
}

TEST_CASE("LineReader keeps a small buffer across many small lines") {
  LineReader reader;
  for (int i = 0; i < 1000; ++i) {
    reader.feed("{\"id\":" + std::to_string(i) + ",\"op\":\"ping\"}\n");
    REQUIRE(reader.next().status == Status::kLine);
    REQUIRE(reader.next().status == Status::kNeedMore);
  }
  CHECK(reader.capacity() <= LineReader::kKeptCapacity);
}
