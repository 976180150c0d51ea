#include "daemon/host/stop_rules.h"

namespace lpd::daemon {

StopDecision decide_stop(const nlohmann::json& status, uid_t caller_uid, const std::string& socket_path) {
  StopDecision decision;
  const auto pid = status.find("pid");
  const auto uid = status.find("uid");
  if (!status.is_object() || pid == status.end() || !pid->is_number_integer() || pid->get<long long>() <= 1 ||
      uid == status.end() || !uid->is_number_unsigned()) {
    // pid 1 (or 0, or below) is never a daemon lpd started: refuse rather
    // than signal init.
    decision.refusal = "the lpd on " + socket_path + " did not say its pid and uid; stop it by hand";
    return decision;
  }
  decision.pid = static_cast<pid_t>(pid->get<long long>());
  const auto daemon_uid = uid->get<unsigned long long>();
  const std::string who = "lpd (pid " + std::to_string(decision.pid) + ") on " + socket_path;
  if (status.value("socket_activated", false)) {
    decision.refusal = who + " was started by systemd's lpd.socket, which would start it again on the next "
                             "connection; stop both with: systemctl stop lpd.socket lpd.service";
    return decision;
  }
  if (caller_uid != 0 && caller_uid != daemon_uid) {
    decision.refusal = "permission denied: " + who + " runs as uid " + std::to_string(daemon_uid) +
                       "; only that user or root may stop it";
    return decision;
  }
  decision.allowed = true;
  return decision;
}

}  // namespace lpd::daemon
