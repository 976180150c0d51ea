#include "daemon/pauses/pause_dirs.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <deque>
#include <optional>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "daemon/pauses/pause_dir_agent.h"
#include "daemon/pauses/pause_dir_command.h"
#include "protocol/error.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

namespace {
/// An agent answers its setup in milliseconds; a directory that does not
/// answer (a hung mount) is given up on after this.
constexpr auto kSetupTimeout = std::chrono::seconds(10);
/// Lines for an agent that stopped reading (a hung mount): past this, lines
/// are dropped (logged once) rather than held by lpd.
constexpr std::size_t kMaxQueuedBytes = 4 * 1024 * 1024;
/// An agent's line is at most a command file (64 KiB) JSON-escaped.
constexpr std::size_t kMaxAgentLine = 8 * kMaxPauseCommandBytes;

bool mirrors_pause_file(std::string_view type) {
  return type == "pause.created" || type == "pause.resumed" || type == "pause.timed_out" || type == "pause.stale";
}

std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
}  // namespace

struct PauseDirs::Mirror {
  explicit Mirror(boost::asio::io_context& io) : socket(io), setup_timer(io) {}
  std::string run_id;
  std::string path;
  std::string run_dir;
  uid_t owner = static_cast<uid_t>(-1);
  pid_t pid = -1;
  bool ready = false;
  bool run_ended = false;
  bool closing = false;  // the run ended, no pause pending: close once the queued lines are written
  bool writing = false;
  bool overflow_logged = false;
  unsigned errors_logged = 0;
  RejectionBudget rejections;  // refused command files reported
  boost::asio::local::stream_protocol::socket socket;
  boost::asio::steady_timer setup_timer;
  std::optional<Responder> reply;  // pause.mirror's, until the agent answers
  std::array<char, 65536> buffer{};
  std::string inbox;
  std::deque<std::string> outbox;
  std::size_t queued = 0;
};

PauseDirs::PauseDirs(boost::asio::io_context& io, EventBus& events, RunRegistry& runs, const PauseRegistry& pauses,
                     ApplyCommand apply)
    : io_(io), events_(events), runs_(runs), pauses_(pauses), apply_(std::move(apply)) {
  subscription_ = events_.subscribe([this](const Event& e) { on_event(e); });
}

PauseDirs::~PauseDirs() {
  events_.unsubscribe(subscription_);
  for (auto& [pid, watch] : agents_) watch->cancel();
  for (auto& [run_id, mirror] : mirrors_) {
    boost::system::error_code ignored;
    mirror->socket.close(ignored);  // the agent reads end of file and exits
    mirror->setup_timer.cancel();
  }
}

json PauseDirs::mirror(const std::string& run_id, const std::string& path, const Credentials& who,
                       const DeferReply& defer) {
  const Run* run = runs_.find(run_id);
  if (!run) throw Error(ErrorCode::kNotFound, "no run \"" + run_id + "\"");
  if (!run->active) throw Error(ErrorCode::kConflict, "run " + run_id + " has already ended");
  if (path.empty() || path.front() != '/' || path.size() > 4096 || path.find('\0') != std::string::npos)
    throw Error(ErrorCode::kBadRequest, "field \"pause_dir\" must be an absolute path");
  if (auto it = mirrors_.find(run_id); it != mirrors_.end()) {
    const Mirror& existing = *it->second;
    if (existing.path != path)
      throw Error(ErrorCode::kConflict, "run " + run_id + " already mirrors its pauses into " + existing.path);
    if (!existing.ready) throw Error(ErrorCode::kConflict, "the pause directory of run " + run_id + " is being set up");
    return {{"pause_dir", path}, {"run_dir", existing.run_dir}};
  }
  PauseDirSetup setup{path, run_id, who};
  PauseDirAgent agent;
  try {
    agent = start_pause_dir_agent(setup);
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kUnavailable, std::string("cannot start the pause directory agent: ") + e.what());
  }
  auto mirror = std::make_shared<Mirror>(io_);
  mirror->run_id = run_id;
  mirror->path = path;
  mirror->owner = run->owner;
  mirror->pid = agent.pid;
  boost::system::error_code ec;
  mirror->socket.assign(boost::asio::local::stream_protocol(), agent.socket.release(), ec);
  const pid_t pid = agent.pid;
  agents_[pid] = ExitWatch::start(io_, pid, [this, pid](const ExitStatus&) {
    int status = 0;
    (void)::waitpid(pid, &status, WNOHANG);  // this agent only: lpd has other children
    boost::asio::post(io_, [this, pid] { agents_.erase(pid); });
  });
  if (ec) {
    ::kill(pid, SIGKILL);
    throw Error(ErrorCode::kUnavailable, "cannot watch the pause directory agent: " + ec.message());
  }
  mirror->reply = defer();
  mirror->setup_timer.expires_after(kSetupTimeout);
  mirror->setup_timer.async_wait([this, run_id, pid](boost::system::error_code e) {
    if (e) return;
    auto it = mirrors_.find(run_id);
    if (it == mirrors_.end() || it->second->ready) return;
    ::kill(pid, SIGKILL);
    drop(run_id, "its directory did not answer within 10 s");
  });
  mirrors_[run_id] = mirror;
  read_from(mirror);
  return json();
}

void PauseDirs::read_from(const std::shared_ptr<Mirror>& mirror) {
  mirror->socket.async_read_some(
      boost::asio::buffer(mirror->buffer), [this, mirror](boost::system::error_code ec, std::size_t n) {
        if (ec == boost::asio::error::operation_aborted) return;
        auto current = mirrors_.find(mirror->run_id);
        if (current == mirrors_.end() || current->second != mirror) return;
        if (ec || n == 0) {
          drop(mirror->run_id, mirror->closing ? "" : "the agent ended");
          return;
        }
        mirror->inbox.append(mirror->buffer.data(), n);
        for (std::size_t newline; (newline = mirror->inbox.find('\n')) != std::string::npos;) {
          const json message = json::parse(mirror->inbox.substr(0, newline), nullptr, false);
          mirror->inbox.erase(0, newline + 1);
          if (message.is_object()) on_message(*mirror, message);
          current = mirrors_.find(mirror->run_id);
          if (current == mirrors_.end() || current->second != mirror) return;  // dropped meanwhile
        }
        if (mirror->inbox.size() > kMaxAgentLine) {
          ::kill(mirror->pid, SIGKILL);
          drop(mirror->run_id, "the agent sent a line over " + std::to_string(kMaxAgentLine) + " bytes");
          return;
        }
        read_from(mirror);
      });
}

void PauseDirs::on_message(Mirror& mirror, const json& message) {
  const std::string op = message.value("op", "");
  if (op == "ready" && !mirror.ready) {
    mirror.ready = true;
    mirror.setup_timer.cancel();
    mirror.run_dir = message.value("run_dir", mirror.path);
    write_run(mirror);
    // Pauses the run already has (none, unless the shim asked late).
    for (const Pause* pause : pauses_.list(true, mirror.run_id))
      send(mirror, {{"op", "write"}, {"where", "pauses"}, {"name", pause->pause_id + ".json"},
                    {"text", pause->to_json().dump(2, ' ', false, json::error_handler_t::replace) + "\n"}});
    spdlog::info("run {}: pauses mirrored into {} (agent pid {})", mirror.run_id, mirror.run_dir, mirror.pid);
    if (mirror.reply) mirror.reply->ok({{"pause_dir", mirror.path}, {"run_dir", mirror.run_dir}});
    mirror.reply.reset();
  } else if (op == "failed" && !mirror.ready) {
    const auto code = protocol::error_code_from_string(message.value("code", "")).value_or(ErrorCode::kBadRequest);
    if (mirror.reply) mirror.reply->fail(code, "--pause-dir: " + message.value("message", "refused"));
    mirror.reply.reset();
    drop(mirror.run_id, "");
  } else if (op == "command" && mirror.ready) {
    on_command(mirror, message);
  } else if (op == "error") {
    // A user's full or read-only directory: the run goes on, said a few times.
    if (mirror.errors_logged < 5) {
      ++mirror.errors_logged;
      spdlog::warn("run {}: pause directory: {}", mirror.run_id, message.value("message", ""));
    }
  }
}

void PauseDirs::on_command(Mirror& mirror, const json& message) {
  const std::string name = message.value("name", "");
  const auto pause_id = pause_id_of_command_file(name);
  if (!pause_id) return;
  const std::string file = mirror.run_dir + "/commands/" + name;
  auto reject = [&](const std::string& why) {
    const auto verdict = mirror.rejections.take(std::chrono::steady_clock::now());
    if (!verdict.report) return;  // counted, and said with the next one reported
    spdlog::info("run {}: {} refused: {}", mirror.run_id, file, why);
    // `announcement`: the line a controller's terminal and `lpctl run` show for it.
    json data{{"pause_id", *pause_id},
              {"file", file},
              {"message", why},
              {"announcement", "lpd: command file refused, pause " + *pause_id + " still waits: " + why}};
    if (verdict.unreported_before > 0) data["unreported_before"] = verdict.unreported_before;
    events_.publish("pause.command_rejected", std::move(data), mirror.run_id, mirror.owner);
  };
  if (message.contains("error")) return reject(file + " " + message.value("error", "cannot be read"));
  const auto parsed = parse_pause_command(message.value("text", ""));
  if (const auto* why = std::get_if<std::string>(&parsed)) return reject(file + ": " + *why);
  try {
    apply_(mirror.run_id, *pause_id, std::get<ResumeRequest>(parsed));
  } catch (const Error& e) {
    return reject(e.what());
  }
  send(mirror, {{"op", "remove"}, {"name", name}});
}

void PauseDirs::on_event(const Event& event) {
  if (mirrors_.empty() || event.run_id.empty()) return;
  const bool pause_event = event.type.rfind("pause.", 0) == 0;
  if (!pause_event && event.type != "run.ended") return;
  auto it = mirrors_.find(event.run_id);
  if (it == mirrors_.end()) return;
  Mirror& mirror = *it->second;
  json line = event.with_envelope(event.data());
  line["event"] = event.type;
  send(mirror, {{"op", "append"}, {"name", "events.jsonl"}, {"text", dump_line(line) + "\n"}});
  if (mirrors_pause_file(event.type)) {
    json record = event.data();
    record.erase("announcement");  // the terminal's lines for the event, not part of the pause
    const std::string pause_id = record.value("pause_id", "");
    if (!pause_id.empty())
      send(mirror, {{"op", "write"}, {"where", "pauses"}, {"name", pause_id + ".json"},
                    {"text", record.dump(2, ' ', false, json::error_handler_t::replace) + "\n"}});
  }
  if (event.type == "run.ended") {
    write_run(mirror);
    mirror.run_ended = true;
  }
  // A run whose controller went away may still have pauses pending: their
  // end (stale, as the killed process's pidfd says) is mirrored too.
  if (mirror.run_ended && !mirror.closing && pauses_.list(false, mirror.run_id).empty()) {
    mirror.closing = true;
    flush(it->second);
  }
}

void PauseDirs::write_run(Mirror& mirror) {
  const Run* run = runs_.find(mirror.run_id);
  if (!run) return;
  json record = run->to_json();
  record["pause_dir"] = mirror.path;
  send(mirror, {{"op", "write"}, {"name", "run.json"},
                {"text", record.dump(2, ' ', false, json::error_handler_t::replace) + "\n"}});
}

void PauseDirs::send(Mirror& mirror, const json& request) {
  std::string line = dump_line(request) + "\n";
  if (mirror.queued + line.size() > kMaxQueuedBytes) {
    if (!mirror.overflow_logged)
      spdlog::warn("run {}: the pause directory agent for {} is not keeping up; lines dropped", mirror.run_id,
                   mirror.path);
    mirror.overflow_logged = true;
    return;
  }
  mirror.queued += line.size();
  mirror.outbox.push_back(std::move(line));
  if (auto it = mirrors_.find(mirror.run_id); it != mirrors_.end() && it->second.get() == &mirror) flush(it->second);
}

void PauseDirs::flush(const std::shared_ptr<Mirror>& mirror) {
  if (mirror->writing) return;
  if (mirror->outbox.empty()) {
    if (mirror->closing) {
      boost::system::error_code ignored;
      mirror->socket.shutdown(boost::asio::socket_base::shutdown_send, ignored);  // the agent ends
    }
    return;
  }
  mirror->writing = true;
  boost::asio::async_write(mirror->socket, boost::asio::buffer(mirror->outbox.front()),
                           [this, mirror](boost::system::error_code ec, std::size_t) {
                             if (ec == boost::asio::error::operation_aborted) return;
                             mirror->writing = false;
                             mirror->queued -= mirror->outbox.front().size();
                             mirror->outbox.pop_front();
                             auto it = mirrors_.find(mirror->run_id);
                             if (it == mirrors_.end() || it->second != mirror) return;
                             if (ec) return drop(mirror->run_id, "writing to the agent: " + ec.message());
                             flush(mirror);
                           });
}

void PauseDirs::drop(const std::string& run_id, const std::string& why) {
  auto it = mirrors_.find(run_id);
  if (it == mirrors_.end()) return;
  std::shared_ptr<Mirror> mirror = it->second;
  mirrors_.erase(it);
  if (mirror->reply) mirror->reply->fail(ErrorCode::kUnavailable, "--pause-dir " + mirror->path + ": " + why);
  mirror->reply.reset();
  mirror->setup_timer.cancel();
  boost::system::error_code ignored;
  mirror->socket.close(ignored);
  if (!why.empty()) spdlog::warn("run {}: pause directory {} no longer mirrored: {}", run_id, mirror->path, why);
}

}  // namespace lpd::daemon
