#include "daemon/crashes/crash.h"
#include "daemon/core/record_field.h"

#include <csignal>
#include <cstring>
#include <utility>

namespace lpd::daemon {

using nlohmann::json;

namespace {

/// faulthandler's wording for each signal it handles.
constexpr std::pair<const char*, int> kFaultHandlerNames[] = {
    {"Segmentation fault", SIGSEGV}, {"Aborted", SIGABRT},          {"Bus error", SIGBUS},
    {"Floating point exception", SIGFPE}, {"Illegal instruction", SIGILL},
};

}  // namespace

std::optional<int> signal_from_traceback(std::string_view text) {
  const auto marker = text.find("Fatal Python error: ");
  if (marker == std::string_view::npos) return std::nullopt;
  const auto line = text.substr(marker, text.find('\n', marker) - marker);
  for (const auto& [words, signo] : kFaultHandlerNames)
    if (line.find(words) != std::string_view::npos) return signo;
  return std::nullopt;
}

json Crash::to_json() const {
  json j = {{"crash_id", crash_id},   {"run_id", run_id},       {"nodeid", nodeid},         {"where", where},
            {"phase", phase},         {"worker_id", worker_id},   {"pid", pid},
            {"signal", signal ? json(*signal) : json(nullptr)},
            {"signal_name", signal ? json(signal_name(*signal)) : json(nullptr)},
            {"exit_code", exit_code ? json(*exit_code) : json(nullptr)},
            {"reason", reason},       {"traceback", traceback},   {"crash_time", crash_time},
            {"duration", duration},   {"attempt", attempt},       {"owner_uid", owner},
            {"flaky", flaky}};
  return j;
}

Crash Crash::from_json(const json& j) {
  Crash c;
  if (auto it = j.find("crash_id"); it != j.end() && it->is_number_unsigned()) c.crash_id = it->get<std::uint64_t>();
  c.run_id = field_or(j, "run_id", "");
  c.nodeid = field_or(j, "nodeid", "");
  c.where = field_or(j, "where", "");
  c.phase = field_or(j, "phase", "");
  c.worker_id = field_or(j, "worker_id", "");
  c.pid = field_or(j, "pid", 0);
  c.signal = integer_field<int>(j, "signal");
  c.exit_code = integer_field<int>(j, "exit_code");
  c.reason = field_or(j, "reason", "");
  c.traceback = field_or(j, "traceback", "");
  c.crash_time = field_or(j, "crash_time", 0.0);
  c.duration = field_or(j, "duration", 0.0);
  c.attempt = field_or(j, "attempt", 1);
  c.owner = field_or(j, "owner_uid", static_cast<uid_t>(-1));
  if (auto it = j.find("flaky"); it != j.end() && it->is_boolean()) c.flaky = it->get<bool>();
  return c;
}

bool results_lost_with(const Crash& crash) {
  const std::string_view reason = crash.reason;
  return crash.where == "session" && crash.nodeid.empty() && reason.size() >= kWhileLpdAway.size() &&
         reason.substr(reason.size() - kWhileLpdAway.size()) == kWhileLpdAway;
}

}  // namespace lpd::daemon
