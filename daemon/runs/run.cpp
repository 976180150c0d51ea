#include "daemon/runs/run.h"

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
  return j;
}

Run Run::from_json(const json& j) {
  Run r;
  r.run_id = j.value("run_id", "");
  r.pid = j.value("pid", 0);
  r.hostname = j.value("hostname", "");
  r.cwd = j.value("cwd", "");
  r.argv = j.value("argv", std::vector<std::string>{});
  r.created_at = j.value("created_at", 0.0);
  r.ended_at = j.value("ended_at", 0.0);
  r.active = j.value("status", "ended") == "active";
  r.owner = j.value("owner_uid", static_cast<uid_t>(-1));
  r.supervised = j.value("supervised", false);
  for (const auto& w : j.value("workers", json::array())) {
    Worker worker;
    worker.worker_id = w.value("worker_id", "");
    worker.pid = w.value("pid", 0);
    r.workers.emplace(worker.worker_id, worker);
  }
  return r;
}

}  // namespace lpd::daemon
