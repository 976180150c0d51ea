#include "daemon/runs/run_journal.h"

#include <spdlog/spdlog.h>

#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

RunJournal::RunJournal(EventBus& events, const StateStore& store) : store_(store) {
  events.subscribe([this](const Event& e) {
    if (e.run_id.empty() || !is_safe_id(e.run_id)) return;
    nlohmann::json line = e.push_data();
    line["event"] = e.type;
    try {
      store_.append_line("runs/" + e.run_id + "/events.jsonl", line, /*durable=*/false);
    } catch (const std::exception& ex) {
      spdlog::warn("cannot append to the journal of run {}: {}", e.run_id, ex.what());
    }
  });
}

}  // namespace lpd::daemon
