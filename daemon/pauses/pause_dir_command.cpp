#include "daemon/pauses/pause_dir_command.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

namespace {
constexpr std::string_view kResumeSuffix = ".resume.json";
}

std::optional<std::string> pause_id_of_command_file(std::string_view file_name) {
  if (file_name.size() <= kResumeSuffix.size() || file_name.substr(file_name.size() - kResumeSuffix.size()) != kResumeSuffix)
    return std::nullopt;
  std::string id(file_name.substr(0, file_name.size() - kResumeSuffix.size()));
  if (!is_safe_id(id)) return std::nullopt;
  return id;
}

std::variant<ResumeRequest, std::string> parse_pause_command(std::string_view body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::string("not valid JSON");
  if (!j.is_object()) return std::string("not a JSON object");
  ResumeRequest request;
  if (auto it = j.find("result"); it != j.end()) {
    if (!it->is_boolean() && !it->is_null()) return std::string("\"result\" must be true, false or null (none)");
    request.has_result = true;
    if (it->is_boolean()) request.result = it->get<bool>();
  }
  for (auto [key, slot] :
       {std::pair{"reason", &request.reason}, std::pair{"failure_reason", &request.failure_reason}}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return "\"" + std::string(key) + "\" must be a string";
    *slot = it->get<std::string>();
  }
  return request;
}

RejectionBudget::Verdict RejectionBudget::take(std::chrono::steady_clock::time_point now) {
  if (used_ == 0 || now - window_start_ >= kWindow) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ >= kPerWindow) {
    ++unreported_;
    return {};
  }
  ++used_;
  return {true, std::exchange(unreported_, 0)};
}

}  // namespace lpd::daemon
