#include "daemon/jobs/junit_of_job.h"

#include <unistd.h>

#include <climits>

#include "daemon/reports/junit_names.h"
#include "daemon/jobs/runner_adapter.h"

namespace lpd::daemon {

JunitInput junit_input_of(const Job& job, std::vector<TestResult>&& results, std::vector<Crash>&& crashes,
                          std::vector<std::string>&& collected, const std::string& hostname, double now) {
  JunitInput in;
  in.runner = job.spec.runner == Runner::kNone ? runner_of(job.spec.argv) : std::string(to_string(job.spec.runner));
  in.suite_name = job.spec.name.empty() ? suite_name_for(job.spec.argv, in.runner) : job.spec.name;
  in.hostname = hostname;
  in.started_at = job.created_at;
  in.ended_at = job.ended_at > 0 ? job.ended_at : now;
  in.results = std::move(results);
  in.crashes = std::move(crashes);
  if (!job.collect_only()) in.collected = std::move(collected);
  in.not_run_reason = never_run_reason(job.stop_requested, job.command_exit_code, job.command_signal, in.crashes);
  // A job from an lpd that did not record tests_reported: a test's result
  // (not lpd's own for the command, not a failure outside tests) says so.
  in.tests_reported = job.tests_reported;
  for (const auto& r : in.results)
    in.tests_reported |= r.worker_id != "command" && (r.phase == "setup" || r.phase == "call" || r.phase == "teardown");
  // a process left running by the one test it started in.
  for (const auto& left : job.left_running_processes)
    if (left.tests.size() == 1) in.system_err[left.tests.front()] += left.junit_line();
  return in;
}

void lend_back(JunitInput& in, std::vector<TestResult>& results, std::vector<Crash>& crashes,
               std::vector<std::string>& collected) {
  results = std::move(in.results);
  crashes = std::move(in.crashes);
  // Empty when it was left out (never taken) or when the run had none.
  if (!in.collected.empty()) collected = std::move(in.collected);
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

}  // namespace lpd::daemon
