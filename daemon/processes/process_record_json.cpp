#include "daemon/processes/process_record_json.h"
#include "daemon/core/record_field.h"

#include <utility>

#include "daemon/processes/process_name.h"
#include "protocol/error.h"

namespace lpd::daemon {

using nlohmann::json;

json process_to_json(const SupervisedProcess& r, double now) {
  json left_running = json::array();
  for (const auto& left : r.left_running) left_running.push_back({{"pid", left.pid}, {"argv", left.argv}});
  json exit = nullptr;
  if (r.state == ProcessState::kExited || r.state == ProcessState::kKilled) {
    exit = {{"known", r.exit.known()}, {"description", r.exit.describe()}};
    if (r.exit.known()) {
      exit["code"] = r.exit.signal ? json(nullptr) : json(*r.exit.exit_code);
      exit["signal"] = r.exit.signal ? json(*r.exit.signal) : json(nullptr);
    }
  }
  const bool running = is_running(r.state);
  const double until = running ? now : (r.ended_at > 0 ? r.ended_at : now);
  return {{"name", r.name},
          {"scope", r.scope},
          {"full_name", r.key().full_name()},
          {"pid", r.pid},
          {"state", to_string(r.state)},
          {"owner", r.owner},
          {"start_time", r.start_time},
          {"started_at", r.started_at},
          {"ready_at", r.ready_at > 0 ? json(r.ready_at) : json(nullptr)},
          {"ended_at", r.ended_at > 0 ? json(r.ended_at) : json(nullptr)},
          {"uptime_seconds", r.started_at > 0 && until > r.started_at ? until - r.started_at : 0.0},
          {"argv", r.argv},
          {"cwd", r.cwd},
          {"pattern", r.pattern.empty() ? json(nullptr) : json(r.pattern)},
          {"log_path", r.log_path},
          {"logs", r.logs},
          {"start_number", r.start_number},
          {"keep_logs", r.keep_logs},
          {"log_dropped_bytes", r.log_dropped_bytes},
          {"leased", r.leased},
          {"linger", r.linger},
          {"timeout", r.timeout},
          {"max_read_lines", r.max_read_lines},
          {"keep_on_timeout", r.keep_on_timeout},
          {"ready_offset", r.ready_offset},
          {"ready_line", r.ready_line},
          {"exit_status", exit},
          {"adopted", r.adopted},
          {"failure", r.failure.empty() ? json(nullptr) : json(r.failure)},
          {"cgroup", r.cgroup_dir},
          {"left_running", left_running}};
}

std::optional<SupervisedProcess> process_from_json(const json& v) {
  try {
    SupervisedProcess r;
    r.name = v.at("name").get<std::string>();
    if (!is_valid_process_name(r.name)) return std::nullopt;
    // Records from before scopes have none: the global scope "".
    if (v.contains("scope")) {
      const auto& scope = v["scope"];
      if (!scope.is_string() || (r.scope = normalize_scope(scope.get<std::string>())) != scope.get<std::string>())
        return std::nullopt;
    }
    auto state = proc_state_from_string(v.at("state").get<std::string>());
    if (!state) return std::nullopt;
    r.state = *state;
    const auto pid = integer_field<pid_t>(v, "pid");
    const auto owner = integer_field<uid_t>(v, "owner");
    const auto start_time = integer_field<std::uint64_t>(v, "start_time");
    if (!pid || !owner || !start_time) return std::nullopt;
    r.pid = *pid;
    r.owner = *owner;
    r.start_time = *start_time;
    r.started_at = v.value("started_at", 0.0);
    if (v.contains("ready_at") && v["ready_at"].is_number()) r.ready_at = v["ready_at"].get<double>();
    if (v.contains("ended_at") && v["ended_at"].is_number()) r.ended_at = v["ended_at"].get<double>();
    r.argv = v.value("argv", std::vector<std::string>{});
    r.cwd = v.value("cwd", std::string());
    if (v.contains("pattern") && v["pattern"].is_string()) r.pattern = v["pattern"].get<std::string>();
    r.log_path = v.value("log_path", std::string());
    if (v.contains("logs") && v["logs"].is_array()) {
      for (const auto& path : v["logs"]) {
        if (!path.is_string() || r.logs.size() >= kMaxKeptLogs) return std::nullopt;
        r.logs.push_back(path.get<std::string>());
      }
    } else if (!r.log_path.empty()) {
      r.logs.push_back(r.log_path);  // a record from before logs were kept per start
    }
    r.start_number = integer_field<std::uint64_t>(v, "start_number").value_or(0);
    r.keep_logs = integer_field<std::uint64_t>(v, "keep_logs").value_or(kDefaultKeptLogs);
    r.log_dropped_bytes = integer_field<std::uint64_t>(v, "log_dropped_bytes").value_or(0);
    if (r.keep_logs < 1 || r.keep_logs > kMaxKeptLogs) r.keep_logs = kDefaultKeptLogs;
    r.leased = v.value("leased", false);
    r.linger = v.value("linger", 0.0);
    if (!(r.linger >= 0 && r.linger <= kMaxLingerSeconds)) r.linger = 0;
    r.timeout = v.value("timeout", 0.0);
    r.max_read_lines = integer_field<std::int64_t>(v, "max_read_lines").value_or(0);
    r.keep_on_timeout = v.value("keep_on_timeout", false);
    r.ready_offset = integer_field<std::uint64_t>(v, "ready_offset").value_or(0);
    r.ready_line = v.value("ready_line", std::string());
    r.adopted = v.value("adopted", false);
    if (v.contains("failure") && v["failure"].is_string()) r.failure = v["failure"].get<std::string>();
    // Checked against lpd's cgroup base by ProcessService::restore.
    if (v.contains("cgroup") && v["cgroup"].is_string()) r.cgroup_dir = v["cgroup"].get<std::string>();
    if (v.contains("left_running") && v["left_running"].is_array()) {
      for (const auto& left : v["left_running"]) {
        if (r.left_running.size() >= kMaxLeftRunning) break;
        auto pid = left.is_object() ? integer_field<pid_t>(left, "pid") : std::nullopt;
        if (!pid || *pid <= 0) continue;
        r.left_running.push_back({*pid, left.value("argv", std::string())});
      }
    }
    if (v.contains("exit_status") && v["exit_status"].is_object()) {
      const auto& e = v["exit_status"];
      if (e.value("known", false)) {
        r.exit.exit_code = integer_field<int>(e, "code");
        r.exit.signal = integer_field<int>(e, "signal");
      }
    }
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  } catch (const protocol::Error&) {  // a scope that breaks normalize_scope's rules
    return std::nullopt;
  }
}

}  // namespace lpd::daemon
