#include <catch2/catch.hpp>

#include <map>

#include "protocol/paths.h"

using namespace lpd::protocol;

namespace {
EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST_CASE("socket path follows LPD_SOCKET, root, XDG_RUNTIME_DIR, /tmp in that order") {
  CHECK(default_socket_path(1000, env_of({{"LPD_SOCKET", "/x.sock"}, {"XDG_RUNTIME_DIR", "/run/user/1000"}})) ==
        "/x.sock");
  CHECK(default_socket_path(0, env_of({{"XDG_RUNTIME_DIR", "/run/user/0"}})) == "/run/lpd/lpd.sock");
  CHECK(default_socket_path(1000, env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}})) == "/run/user/1000/lpd/lpd.sock");
  CHECK(default_socket_path(1000, env_of({{"XDG_RUNTIME_DIR", ""}})) == "/tmp/lpd-1000/lpd.sock");
  CHECK(default_socket_path(1000, env_of({})) == "/tmp/lpd-1000/lpd.sock");
}

TEST_CASE("state dir follows root, XDG_STATE_HOME, HOME") {
  CHECK(default_state_dir(0, env_of({{"HOME", "/root"}})) == "/var/lib/lpd");
  CHECK(default_state_dir(1000, env_of({{"XDG_STATE_HOME", "/s"}, {"HOME", "/h"}})) == "/s/lpd");
  CHECK(default_state_dir(1000, env_of({{"HOME", "/h"}})) == "/h/.local/state/lpd");
  CHECK(default_state_dir(1000, env_of({})) == "/tmp/lpd-1000/state");
}
