#include "protocol/paths.h"

#include <cstdlib>

namespace lpd::protocol {
namespace {

std::optional<std::string> non_empty(const EnvLookup& env, const std::string& name) {
  auto value = env(name);
  if (value && value->empty()) return std::nullopt;
  return value;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string default_socket_path(uid_t uid, const EnvLookup& env) {
  if (auto s = non_empty(env, "LPD_SOCKET")) return *s;
  if (uid == 0) return "/run/lpd/lpd.sock";
  if (auto rt = non_empty(env, "XDG_RUNTIME_DIR")) return *rt + "/lpd/lpd.sock";
  return "/tmp/lpd-" + std::to_string(uid) + "/lpd.sock";
}

std::string default_state_dir(uid_t uid, const EnvLookup& env) {
  if (uid == 0) return "/var/lib/lpd";
  if (auto st = non_empty(env, "XDG_STATE_HOME")) return *st + "/lpd";
  if (auto home = non_empty(env, "HOME")) return *home + "/.local/state/lpd";
  return "/tmp/lpd-" + std::to_string(uid) + "/state";
}

}  // namespace lpd::protocol
