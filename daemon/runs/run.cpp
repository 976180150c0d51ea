#include "daemon/runs/run.h"
#include "daemon/core/record_field.h"

namespace lpd::daemon {

using nlohmann::json;

json Run::to_json() const {
  json workers_json = json::array();
  for (const auto& [id, w] : workers) workers_json.push_back({{"worker_id", id}, {"pid", w.pid}});
  json j = {{"run_id", run_id},   {"pid", pid},
            {"hostname", hostname}, {"cwd", cwd},
            {"argv", argv},       {"created_at", created_at},
            {"status", active ? "active" : "ended"},
            {"owner_uid", owner}, {"workers", workers_json}, {"supervised", supervised}};
  if (!active) j["ended_at"] = ended_at;
  if (returncode) {  // how a supervised run ended
    j["returncode"] = *returncode;
    j["signal"] = signal ? json(*signal) : json(nullptr);
    j["result"] = result;
  }
  return j;
}

Run Run::from_json(const json& j) {
  Run r;
  r.run_id = field_or(j, "run_id", "");
  r.pid = field_or(j, "pid", 0);
  // Bounded again: a record written by an lpd that kept them whole.
  r.hostname = bounded_text(field_or(j, "hostname", ""), kMaxHostnameBytes);
  r.cwd = bounded_text(field_or(j, "cwd", ""), kMaxCwdBytes);
  r.argv = bounded_argv(field_or(j, "argv", std::vector<std::string>{}));
  r.created_at = field_or(j, "created_at", 0.0);
  r.ended_at = field_or(j, "ended_at", 0.0);
  r.active = field_or(j, "status", "ended") == "active";
  r.owner = field_or(j, "owner_uid", static_cast<uid_t>(-1));
  r.supervised = field_or(j, "supervised", false);
  // a mistyped field is absent, as for every record field.
  if (const auto rc = j.find("returncode"); rc != j.end() && rc->is_number_integer()) {
    r.returncode = rc->get<int>();
    if (const auto sig = j.find("signal"); sig != j.end() && sig->is_number_integer()) r.signal = sig->get<int>();
    r.result = field_or(j, "result", "");
  }
  for (const auto& w : field_or(j, "workers", json::array())) {
    Worker worker;
    worker.worker_id = field_or(w, "worker_id", "");
    worker.pid = field_or(w, "pid", 0);
    r.workers.emplace(worker.worker_id, worker);
  }
  return r;
}

std::vector<std::string> bounded_argv(std::vector<std::string> argv, std::size_t most_bytes) {
  std::size_t bytes = 0, kept = 0;
  for (; kept < argv.size(); ++kept) {
    if (bytes + argv[kept].size() + 1 > most_bytes) break;
    bytes += argv[kept].size() + 1;
  }
  if (kept == argv.size()) return argv;
  std::size_t left_bytes = 0;
  for (std::size_t i = kept; i < argv.size(); ++i) left_bytes += argv[i].size() + 1;
  const std::size_t left = argv.size() - kept;
  argv.resize(kept);
  argv.push_back("... " + std::to_string(left) + " more argument(s), " + std::to_string(left_bytes) +
                 " bytes, not kept");
  return argv;
}

}  // namespace lpd::daemon
