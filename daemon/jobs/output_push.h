#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon {

/// One run.output push line (with its newline), as
/// protocol::encode_push("run.output", {{"data", note + bytes}, {"stream",
/// stream}, {"offset", end_offset}, {"dropped_bytes", dropped}}) writes it,
/// byte for byte (invalid UTF-8 replaced), without building a JSON tree:
/// `lpctl run` gets one per coalescing window of a run's output for the
/// whole run. `dropped` absent leaves the member out.
std::string encode_output_push(std::string_view note, std::string_view bytes, std::string_view stream,
                               std::uint64_t end_offset, std::optional<std::uint64_t> dropped);

}  // namespace lpd::daemon
