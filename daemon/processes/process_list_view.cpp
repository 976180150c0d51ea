#include "daemon/processes/process_list_view.h"

#include <string>

namespace lpd::daemon {

using nlohmann::json;

std::string cut_utf8(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  // Back to the first byte of a sequence: the cut text stays valid UTF-8
  // when the whole was.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

json list_view(json record) {
  if (!record.is_object()) return record;
  if (auto argv = record.find("argv"); argv != record.end() && argv->is_array()) {
    std::size_t used = 0;
    bool cut = false;
    json kept = json::array();
    for (const auto& arg : *argv) {
      if (!arg.is_string()) continue;
      const auto& text = arg.get_ref<const std::string&>();
      if (used + text.size() <= kListArgvBytes) {
        kept.push_back(text);
        used += text.size();
        continue;
      }
      cut = true;
      if (used < kListArgvBytes) kept.push_back(cut_utf8(text, kListArgvBytes - used));
      break;
    }
    if (cut) {
      record["argv_count"] = argv->size();
      record["argv"] = std::move(kept);
      record["argv_truncated"] = true;
    }
  }
  for (const char* field : {"pattern", "ready_line", "cwd", "failure"}) {
    auto it = record.find(field);
    if (it == record.end() || !it->is_string() || it->get_ref<const std::string&>().size() <= kListTextBytes) continue;
    *it = cut_utf8(it->get_ref<const std::string&>(), kListTextBytes);
    record[std::string(field) + "_truncated"] = true;
  }
  for (const char* field : {"left_running", "logs"}) {
    auto it = record.find(field);
    if (it == record.end() || !it->is_array() || it->size() <= kListEntries) continue;
    const std::size_t count = it->size();
    it->erase(it->begin() + static_cast<std::ptrdiff_t>(kListEntries), it->end());
    record[std::string(field) + "_count"] = count;
  }
  if (auto left = record.find("left_running"); left != record.end() && left->is_array())
    for (auto& process : *left)
      if (auto argv = process.find("argv"); argv != process.end() && argv->is_string() &&
                                            argv->get_ref<const std::string&>().size() > kListTextBytes)
        *argv = cut_utf8(argv->get_ref<const std::string&>(), kListTextBytes);
  return record;
}

}  // namespace lpd::daemon
