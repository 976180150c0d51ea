#include "daemon/runs/run_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/runs/run_registry.h"

namespace lpd::daemon {

RunJournal::RunJournal(EventBus& events, const StateStore& store) : store_(store) {
  events.subscribe([this](const Event& e) { append(e); });
}

RunJournal::~RunJournal() {
  for (auto& [_, fd] : open_) ::close(fd);
}

int RunJournal::journal_fd(const std::string& run_id) {
  auto it = open_.find(run_id);
  if (it != open_.end()) return it->second;
  if (open_.size() >= kMaxOpen) {
    ::close(open_.begin()->second);
    open_.erase(open_.begin());
  }
  store_.make_dir("runs/" + run_id);
  const std::string path = store_.path("runs/" + run_id + "/events.jsonl");
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  open_[run_id] = fd;
  return fd;
}

void RunJournal::close_journal(const std::string& run_id) {
  auto it = open_.find(run_id);
  if (it == open_.end()) return;
  ::close(it->second);
  open_.erase(it);
}

void RunJournal::append(const Event& e) {
  if (e.run_id.empty() || !is_safe_id(e.run_id)) return;
  nlohmann::json line = e.push_data();
  line["event"] = e.type;
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  const int fd = journal_fd(e.run_id);
  // One write() per line: concurrent readers never see half a line.
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    spdlog::warn("cannot append to the journal of run {}: {}", e.run_id, std::strerror(errno));
  if (e.type == "run.ended") close_journal(e.run_id);
}

}  // namespace lpd::daemon
