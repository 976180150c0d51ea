// what the WebSocket (GET /ws) sends, as plain rules.
#include "daemon/http/ws_frames.h"

#include <nlohmann/json.hpp>

#include "daemon/http/json_depth.h"

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

std::string close_frame_bytes(std::uint16_t code, std::string_view reason) {
  reason = reason.substr(0, 123);
  std::string out;
  out.push_back(static_cast<char>(0x88));  // FIN, close
  out.push_back(static_cast<char>(2 + reason.size()));
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xff));
  out.append(reason);
  return out;
}

std::optional<std::string> frame_of_line(std::string_view line,
                                         const std::function<bool(const std::string& run_id)>& is_relay_run) {
  // re-serialising recurses per level; a line nesting deeper is
  // not re-framed, and the client hears that something was left out.
  if (!json_depth_within(line))
    return frame("lpd", json{{"notice", "unshown"}, {"why", std::string(kTooDeepMessage)}}.dump());
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

bool WsOutbox::offer(std::string frame, FrameKind kind, std::string_view type) {
  if (kind == FrameKind::kJob) {
    bytes_ += frame.size();
    job_bytes_ += frame.size();
    jobs_.push_back(std::move(frame));
    return true;
  }
  if (bytes_ > 0 && bytes_ + frame.size() > kMaxQueuedBytes) {
    ++dropped_;
    if (!type.empty() && (dropped_types_.size() < 32 || dropped_types_.count(type)))
      ++dropped_types_[std::string(type)];
    return false;
  }
  bytes_ += frame.size();
  events_.push_back(std::move(frame));
  return true;
}

const std::string* WsOutbox::front() {
  if (current_ == Current::kNone) {
    if (!jobs_.empty())
      current_ = Current::kJob;
    else if (!events_.empty())
      current_ = Current::kEvent;
  }
  if (current_ == Current::kJob) return &jobs_.front();
  if (current_ == Current::kEvent) return &events_.front();
  return nullptr;
}

void WsOutbox::written() {
  if (current_ == Current::kJob && !jobs_.empty()) {
    bytes_ -= jobs_.front().size();
    job_bytes_ -= jobs_.front().size();
    jobs_.pop_front();
  } else if (current_ == Current::kEvent && !events_.empty()) {
    bytes_ -= events_.front().size();
    events_.pop_front();
  }
  current_ = Current::kNone;
  if (dropped_ > 0 && bytes_ <= kDrainedBytes) {
    json payload{{"notice", "dropped"}, {"count", dropped_}, {"what", "event frames"}};
    if (!dropped_types_.empty()) payload["types"] = dropped_types_;
    std::string notice = frame("lpd", payload.dump());
    dropped_ = 0;
    dropped_types_.clear();
    bytes_ += notice.size();
    events_.push_back(std::move(notice));
  }
  // A burst's node maps go back.
  if (jobs_.empty()) std::deque<std::string>().swap(jobs_);
  if (events_.empty()) std::deque<std::string>().swap(events_);
}

void WsOutbox::clear() {
  std::deque<std::string>().swap(jobs_);
  std::deque<std::string>().swap(events_);
  bytes_ = 0;
  job_bytes_ = 0;
  dropped_ = 0;
  dropped_types_.clear();
  current_ = Current::kNone;
}

}  // namespace lpd::daemon::http
