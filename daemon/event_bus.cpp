#include "daemon/event_bus.h"

#include <chrono>
#include <vector>

namespace lpd::daemon {

nlohmann::json Event::push_data() const {
  nlohmann::json out = data.is_object() ? data : nlohmann::json{{"value", data}};
  out["seq"] = seq;
  out["time"] = time;
  if (!run_id.empty() && !out.contains("run_id")) out["run_id"] = run_id;
  return out;
}

std::uint64_t EventBus::subscribe(Subscriber subscriber, std::uint64_t session) {
  const auto token = next_token_++;
  subscribers_.emplace(token, Subscription{std::move(subscriber), session});
  return token;
}

void EventBus::unsubscribe(std::uint64_t token) { subscribers_.erase(token); }

void EventBus::drop_session(std::uint64_t session) {
  if (session == 0) return;
  std::erase_if(subscribers_, [session](const auto& entry) { return entry.second.session == session; });
}

const Event& EventBus::publish(std::string type, nlohmann::json data, std::string run_id, uid_t owner) {
  Event event;
  event.seq = next_seq_++;
  event.time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  event.type = std::move(type);
  event.run_id = std::move(run_id);
  event.owner = owner;
  event.data = std::move(data);
  history_.push_back(std::move(event));
  if (history_.size() > kHistory) history_.pop_front();
  // A subscriber may unsubscribe (or subscribe) while being called.
  std::vector<std::uint64_t> tokens;
  tokens.reserve(subscribers_.size());
  for (const auto& [token, _] : subscribers_) tokens.push_back(token);
  const Event& published = history_.back();
  for (auto token : tokens) {
    auto it = subscribers_.find(token);
    if (it != subscribers_.end()) it->second.callback(published);
  }
  return history_.back();
}

}  // namespace lpd::daemon
