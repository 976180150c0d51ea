// issue 16 (h16api): what the WebSocket (GET /ws) sends, as plain rules.
#include "daemon/http/ws_frames.h"

#include <nlohmann/json.hpp>

namespace lpd::daemon::http {

using json = nlohmann::json;

std::string frame(std::string_view type, const std::string& payload_json) {
  std::string out = "{\"type\":";
  out += json(std::string(type)).dump();
  out += ",\"payload\":";
  out += payload_json;
  out += "}";
  return out;
}

std::optional<std::string> frame_of_line(std::string_view line,
                                         const std::function<bool(const std::string& run_id)>& is_relay_run) {
  json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) return std::nullopt;
  const auto dump = [](const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); };
  if (message.contains("ok")) {
    if (const auto id = message.find("id"); id != message.end() && id->is_string() && *id == kEventsRequestId)
      return std::nullopt;
    return frame("reply", dump(message));
  }
  const auto event = message.find("event");
  if (event == message.end() || !event->is_string()) return std::nullopt;
  const std::string name = event->get<std::string>();
  json data = message.value("data", json::object());
  if (!data.is_object()) data = json{{"data", std::move(data)}};
  if (name == "job") {
    const std::string run_id = data.value("run_id", std::string());
    if (is_relay_run && !run_id.empty() && is_relay_run(run_id)) return std::nullopt;
    // lpd's job event keeps its relay payload under "payload": lift it.
    json payload = data.value("payload", json::object());
    if (!payload.is_object()) payload = json::object();
    for (const char* key : {"id", "state", "returncode", "text"})
      if (!payload.contains(key)) payload[key] = nullptr;
    for (auto& [key, value] : data.items())
      if (key != "payload" && key != "type") payload[key] = value;
    payload["event"] = name;
    return frame("job", dump(payload));
  }
  data["event"] = name;
  return frame(name.substr(0, name.find('.')), dump(data));
}

bool WsOutbox::offer(std::string frame) {
  if (!queue_.empty() && bytes_ + frame.size() > kMaxQueuedBytes) {
    ++dropped_;
    return false;
  }
  bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  return true;
}

void WsOutbox::written() {
  if (queue_.empty()) return;
  bytes_ -= queue_.front().size();
  queue_.pop_front();
  if (dropped_ > 0 && bytes_ <= kDrainedBytes) {
    std::string notice = frame("lpd", json{{"notice", "dropped"}, {"count", dropped_}}.dump());
    dropped_ = 0;
    bytes_ += notice.size();
    queue_.push_back(std::move(notice));
  }
  if (queue_.empty()) std::deque<std::string>().swap(queue_);  // a burst's node map goes back
}

void WsOutbox::clear() {
  std::deque<std::string>().swap(queue_);
  bytes_ = 0;
  dropped_ = 0;
}

}  // namespace lpd::daemon::http
