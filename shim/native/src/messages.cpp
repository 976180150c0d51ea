#include "shim/native/src/messages.h"

#include <random>

#include "protocol/message.h"

namespace lpd::shim::messages {

using protocol::json;

std::string hello(std::int64_t id, std::int64_t pid, std::string_view client) {
  return protocol::encode_request(
      id, "hello", {{"protocol", kProtocolVersion}, {"role", "shim"}, {"client", client}, {"pid", pid}});
}

std::string run_register(std::int64_t id, std::string_view run_id, std::string_view worker_id,
                         const std::vector<std::string>& argv, std::string_view cwd, std::string_view hostname) {
  json fields = {{"argv", argv}, {"cwd", cwd}, {"hostname", hostname}};
  if (!run_id.empty()) fields["run_id"] = run_id;
  if (!worker_id.empty()) fields["worker_id"] = worker_id;
  return protocol::encode_request(id, "run.register", std::move(fields));
}

std::string run_end(std::int64_t id) { return protocol::encode_request(id, "run.end"); }

std::string test_start(std::string_view nodeid) {
  // "call": the C API has no phases, and test_started comes right before
  // the body; a crash after it is the test's own, not a fixture's.
  return protocol::encode_notification("test.start", {{"nodeid", nodeid}, {"phase", "call"}});
}

std::string test_finish(std::string_view nodeid, std::string_view outcome, double duration_seconds,
                        std::string_view message) {
  return protocol::encode_notification("test.finish", {{"nodeid", nodeid},
                                                       {"outcome", outcome},
                                                       {"phase", "call"},
                                                       {"duration", duration_seconds},
                                                       {"message", message}});
}

std::string crash_notice(int signal, std::string_view nodeid) {
  return protocol::encode_notification("crash.notice", {{"signal", signal}, {"nodeid", nodeid}});
}

std::string pause_request(std::int64_t id, const PauseRequest& r) {
  return protocol::encode_request(id, "pause.request",
                                  {{"pause_id", r.pause_id},
                                   {"run_id", r.run_id},
                                   {"kind", r.kind},
                                   {"nodeid", r.nodeid},
                                   {"task", r.task},
                                   {"original_failure", r.original_failure},
                                   {"timeout", r.timeout},
                                   {"worker_id", r.worker_id},
                                   {"hostname", r.hostname},
                                   {"cwd", r.cwd}});
}

bool valid_pause_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  const auto alnum = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alnum(id.front())) return false;
  for (char c : id)
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string new_pause_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device device;
  std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  std::string id(16, '0');
  for (char& c : id) {
    c = kHex[bits & 0xf];
    bits >>= 4;
  }
  return id;
}

}  // namespace lpd::shim::messages
