#include "daemon/jobs/output_push.h"

#include "protocol/json_text.h"

namespace lpd::daemon {

std::string encode_output_push(std::string_view note, std::string_view bytes, std::string_view stream,
                               std::uint64_t end_offset, std::optional<std::uint64_t> dropped) {
  std::string line;
  line.reserve(note.size() + bytes.size() + 96);
  // nlohmann writes an object's members sorted by name: the same order here.
  line += "{\"data\":{\"data\":";
  if (note.empty()) {
    protocol::append_json_string(line, bytes);
  } else {
    // One string: a UTF-8 sequence may be split between the two.
    std::string whole;
    whole.reserve(note.size() + bytes.size());
    whole.append(note).append(bytes);
    protocol::append_json_string(line, whole);
  }
  if (dropped) {
    line += ",\"dropped_bytes\":";
    protocol::append_json_unsigned(line, *dropped);
  }
  line += ",\"offset\":";
  protocol::append_json_unsigned(line, end_offset);
  line += ",\"stream\":";
  protocol::append_json_string(line, stream);
  line += "},\"event\":\"run.output\"}\n";
  return line;
}

}  // namespace lpd::daemon
