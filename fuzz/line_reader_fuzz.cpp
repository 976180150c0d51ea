// Fuzz target: the frame decoder (protocol::LineReader), fed a hostile byte
// stream in hostile chunk sizes. Checks it against the framing rule in
// protocol/README.md, computed here the slow and obvious way:
//   - every complete line no longer than the limit comes out, in order,
//     without its newline and without one trailing '\r';
//   - every line longer than the limit is reported kOversized exactly once
//     and none of its bytes ever come out;
//   - at the end, take_buffered() hands back the unfinished last line when
//     it is within the limit, and nothing when it was oversized.
//
// Input: byte 0 picks the line limit (1..64, small so oversized lines are
// common), byte 1 seeds the chunk sizes; the rest is the stream.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/line_reader.h"

namespace {

using lpd::protocol::LineReader;

struct Expected {
  bool oversized;
  std::string line;  // set when not oversized
};

[[noreturn]] void violated(const char* what) {
  __builtin_printf("line_reader invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_line = 1 + data[0] % 64;
  std::uint32_t chunk_seed = data[1];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  // What the rule says must come out.
  std::vector<Expected> expected;
  std::size_t start = 0;
  for (std::size_t nl = stream.find('\n'); nl != std::string_view::npos; nl = stream.find('\n', start)) {
    std::string_view line = stream.substr(start, nl - start);
    if (line.size() > max_line) {
      expected.push_back({true, {}});
    } else {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      expected.push_back({false, std::string(line)});
    }
    start = nl + 1;
  }
  const std::string_view tail = stream.substr(start);
  const bool tail_oversized = tail.size() > max_line;
  if (tail_oversized) expected.push_back({true, {}});

  // What the reader gives, fed in chunks of 1..16 bytes (0 bytes too).
  LineReader reader(max_line);
  std::vector<Expected> got;
  for (std::size_t at = 0; at < stream.size();) {
    chunk_seed = chunk_seed * 1103515245u + 12345u;
    const std::size_t n = std::min<std::size_t>((chunk_seed >> 16) % 17, stream.size() - at);
    reader.feed(stream.substr(at, n));
    at += n;
    for (;;) {
      auto next = reader.next();
      if (next.status == LineReader::Status::kNeedMore) break;
      if (next.status == LineReader::Status::kOversized) {
        got.push_back({true, {}});
      } else {
        if (next.line.size() > max_line) violated("a line over the limit came out");
        if (next.line.find('\n') != std::string::npos) violated("a line holds a newline");
        got.push_back({false, std::move(next.line)});
      }
    }
    if (reader.buffered() > max_line) violated("more than the limit is buffered");
  }

  if (got.size() != expected.size()) violated("wrong number of lines or oversized reports");
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].oversized != expected[i].oversized) violated("a line was judged against the limit wrongly");
    if (got[i].line != expected[i].line) violated("a line came out changed");
  }
  const std::string rest = reader.take_buffered();
  if (rest != (tail_oversized ? std::string() : std::string(tail))) violated("take_buffered() lost or kept bytes");
  if (reader.buffered() != 0) violated("bytes remain after take_buffered()");
  return 0;
}
