#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpd::shim::messages {

/// The lines the native shim sends, one function per message, each returning
/// one encoded line (with its newline) built by protocol/'s encoders. They
/// are pure so tests compare them with protocol/examples/shim_messages.json,
/// which the Python shim is checked against too.

inline constexpr int kProtocolVersion = 1;
inline constexpr std::string_view kClientName = "lpd_shim";

std::string hello(std::int64_t id, std::int64_t pid, std::string_view client = kClientName);

/// run_id / worker_id are left out when empty (a new run; the controller).
std::string run_register(std::int64_t id, std::string_view run_id, std::string_view worker_id,
                         const std::vector<std::string>& argv, std::string_view cwd, std::string_view hostname);

std::string run_end(std::int64_t id);

std::string test_start(std::string_view nodeid);

/// outcome is "passed", "failed" or "skipped"; the phase is always "call".
std::string test_finish(std::string_view nodeid, std::string_view outcome, double duration_seconds,
                        std::string_view message);

/// The same line the crash handler writes, for tests: the handler itself
/// formats it with crash_line.h without allocating.
std::string crash_notice(int signal, std::string_view nodeid);

/// What a pause request carries besides its id.
struct PauseRequest {
  std::string run_id;
  std::string kind;  // "checkpoint" or "failure"
  std::string nodeid;
  std::string task;
  std::string original_failure;
  double timeout = 300;
  std::string pause_id;  // 16 hex chars, chosen by the shim so it can re-send it
  std::string worker_id;
  std::string hostname;
  std::string cwd;
};
std::string pause_request(std::int64_t id, const PauseRequest& request);

/// A fresh pause id: 16 lower-case hex characters.
std::string new_pause_id();

/// Whether lpd accepts `id` as a pause id: 1 to 64 of letters, digits, '.',
/// '_' and '-', starting with a letter or digit (lpd's is_safe_id rule).
bool valid_pause_id(std::string_view id);

}  // namespace lpd::shim::messages
