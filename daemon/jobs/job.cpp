#include "daemon/jobs/job.h"

#include "protocol/name_table.h"
#include "daemon/core/record_field.h"

#include <algorithm>

namespace lpd::daemon {

using nlohmann::json;

namespace {
constexpr std::pair<JobState, const char*> kJobStateNames[] = {
    {JobState::kCreated, "created"},         {JobState::kCollected, "collected"},
    {JobState::kInProgress, "in-progress"},  {JobState::kTerminating, "terminating"},
    {JobState::kDone, "done"},
};

json optional_int(const std::optional<int>& v) { return v ? json(*v) : json(nullptr); }
std::optional<int> int_or_null(const json& j, const char* key) { return integer_field<int>(j, key); }

// -- a left-running process and the test it started in ------------
json left_process_json(const LeftProcess& l) {
  json j = {{"pid", l.pid},
            {"argv", l.argv},
            {"attempt", l.attempt},
            {"nodeid", l.tests.size() == 1 ? json(l.tests.front()) : json(nullptr)},
            {"phase", l.phase.empty() ? json(nullptr) : json(l.phase)},
            {"nodeids", l.tests},
            {"known_by", l.known_by.empty() ? json(nullptr) : json(l.known_by)}};
  if (l.tests.empty() && !l.unknown.empty()) j["no_test_reason"] = l.unknown;
  return j;
}

std::vector<LeftProcess> left_processes_from(const json& j) {
  std::vector<LeftProcess> out;
  const auto it = j.find("left_running_processes");
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& entry : *it) {
    if (!entry.is_object() || out.size() >= Job::kMaxLeftRunning) continue;
    LeftProcess l;
    l.pid = integer_field<int>(entry, "pid").value_or(0);
    l.argv = field_or(entry, "argv", "");
    l.attempt = integer_field<int>(entry, "attempt").value_or(1);
    l.tests = field_or(entry, "nodeids", std::vector<std::string>{});
    if (l.tests.size() > LeftProcess::kMaxCandidates) l.tests.clear();
    l.phase = field_or(entry, "phase", "");
    l.known_by = field_or(entry, "known_by", "");
    l.unknown = field_or(entry, "no_test_reason", "");
    out.push_back(std::move(l));
  }
  return out;
}
}  // namespace

std::string_view to_string(JobState state) { return protocol::name_in(kJobStateNames, state, "created"); }

JobState job_state_from_string(std::string_view text) {
  return protocol::value_named(kJobStateNames, text).value_or(JobState::kCreated);
}

json JobSpec::to_json() const {
  json j = {{"argv", argv},           {"cwd", cwd},
            {"env", env},             {"name", name},
            {"retry_crashed", retry_crashed}, {"rerun_crashed", rerun_crashed},
            {"fail_on_flaky", fail_on_flaky}, {"runner", std::string(to_string(runner))},
            {"junit", junit_path},
            {"crash_log", crash_log_path},   {"pause_on_failure", pause_on_failure}};
  if (run_as) j["run_as"] = {{"uid", run_as->uid}, {"gid", run_as->gid}, {"groups", run_as->groups}};
  if (terminal_columns > 0) j["terminal"] = {{"columns", terminal_columns}, {"rows", terminal_rows}};
  if (separate_stderr) j["separate_stderr"] = true;
  return j;
}

JobSpec JobSpec::from_json(const json& j) {
  JobSpec s;
  s.argv = field_or(j, "argv", std::vector<std::string>{});
  s.cwd = field_or(j, "cwd", "");
  s.env = field_or(j, "env", std::vector<std::string>{});
  s.name = field_or(j, "name", "");
  s.retry_crashed = field_or(j, "retry_crashed", 0);
  s.rerun_crashed = field_or(j, "rerun_crashed", 0);
  s.fail_on_flaky = field_or(j, "fail_on_flaky", false);
  s.runner = runner_from_name(field_or(j, "runner", "none")).value_or(Runner::kNone);
  s.junit_path = field_or(j, "junit", "");
  s.crash_log_path = field_or(j, "crash_log", "");
  s.pause_on_failure = field_or(j, "pause_on_failure", false);
  if (const auto t = j.find("terminal"); t != j.end() && t->is_object()) {
    s.terminal_columns = field_or(*t, "columns", 0);
    s.terminal_rows = field_or(*t, "rows", 0);
  }
  s.separate_stderr = field_or(j, "separate_stderr", false) && s.terminal_columns == 0;
  if (j.contains("run_as") && j["run_as"].is_object()) {
    const json& r = j["run_as"];
    s.run_as = Credentials{field_or(r, "uid", static_cast<uid_t>(-1)), field_or(r, "gid", static_cast<gid_t>(-1)),
                           field_or(r, "groups", std::vector<gid_t>{})};
  }
  return s;
}

json Job::payload(const std::string& run_id) const {
  return {{"id", run_id}, {"state", to_string(state)}, {"returncode", optional_int(returncode)}, {"text", text}};
}

json Job::to_json() const {
  return {{"spec", spec.to_json()},
          {"state", to_string(state)},
          {"attempt", attempt},
          {"attempt_kind", std::string(to_string(attempt_kind))},
          {"attempt_only", attempt_only},
          {"plan", plan.to_json()},
          {"tests_reported", tests_reported},
          {"shim_joined", shim_joined},
          {"command_exit_code", optional_int(command_exit_code)},
          {"command_signal", optional_int(command_signal)},
          {"stop_requested", stop_requested},
          {"monitor_pid", monitor_pid},
          {"monitor_start_time", monitor_start_time},
          {"returncode", optional_int(returncode)},
          {"signal", optional_int(signal)},
          {"text", text},
          {"report_errors", report_errors},
          {"left_running", left_running},
          {"left_running_processes", [this] {
             json all = json::array();
             for (const auto& l : left_running_processes) all.push_back(left_process_json(l));
             return all;
           }()},
          {"created_at", created_at},
          {"ended_at", ended_at}};
}

Job Job::from_json(const json& j) {
  Job job;
  job.spec = JobSpec::from_json(field_or(j, "spec", json::object()));
  job.state = job_state_from_string(field_or(j, "state", "created"));
  job.attempt = field_or(j, "attempt", 0);
  job.attempt_kind = attempt_kind_from_string(field_or(j, "attempt_kind", "full"));
  job.attempt_only = field_or(j, "attempt_only", "");
  job.plan = AttemptPlan::from_json(field_or(j, "plan", json::object()));
  // A job.json of an lpd before the plan: its deselected tests stay left out.
  if (j.contains("deselected") && !j.contains("plan")) {
    job.plan.excluded = field_or(j, "deselected", std::vector<std::string>{});
    job.plan.retry_crashed = job.spec.retry_crashed;
    job.plan.retries_done = std::max(0, job.attempt - 1);
  }
  job.tests_reported = field_or(j, "tests_reported", false);
  job.shim_joined = field_or(j, "shim_joined", false);
  job.command_exit_code = int_or_null(j, "command_exit_code");
  job.command_signal = int_or_null(j, "command_signal");
  job.stop_requested = field_or(j, "stop_requested", false);
  job.monitor_pid = field_or(j, "monitor_pid", 0);
  job.monitor_start_time = field_or(j, "monitor_start_time", std::uint64_t{0});
  job.returncode = int_or_null(j, "returncode");
  job.signal = int_or_null(j, "signal");
  job.text = field_or(j, "text", "");
  job.report_errors = field_or(j, "report_errors", std::vector<std::string>{});
  job.left_running = field_or(j, "left_running", std::vector<std::string>{});
  job.left_running_processes = left_processes_from(j);
  job.created_at = field_or(j, "created_at", 0.0);
  job.ended_at = field_or(j, "ended_at", 0.0);
  return job;
}

std::vector<std::string> Job::attempt_argv() const {
  AttemptSelection selection;
  if (attempt_kind == AttemptKind::kIsolatedRerun)
    selection.only = attempt_only;
  else
    selection.excluded = plan.excluded;
  return daemon::attempt_argv(spec.runner, spec.argv, spec.env, selection);
}

int final_returncode(std::optional<int> exit_code, std::optional<int> signal, bool any_crash) {
  FinalFacts facts;
  facts.exit_code = exit_code;
  facts.signal = signal;
  facts.test_crashes = any_crash ? 1 : 0;
  return final_returncode(facts);
}

bool Job::collect_only() const {
  if (state == JobState::kCollected) return true;
  for (const auto& arg : spec.argv)
    if (arg == "--collect-only" || arg == "--co") return true;
  return false;
}

}  // namespace lpd::daemon
