#include "daemon/daemon.h"

#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>

#include <spdlog/spdlog.h>

#include "daemon/http/http_server.h"
#include "daemon/host/install_paths.h"
#include "daemon/core/directory_trust.h"
#include "daemon/core/unique_fd.h"
#include "daemon/transport/listen_socket.h"
#include "daemon/operation_table.h"
#include "daemon/host/readiness.h"
#include "daemon/host/systemd_integration.h"

namespace lpd::daemon {
namespace {

/// Many test workers connect at once; the default soft limit of 1024 fds is
/// too tight for a daemon, and raising it to the hard limit costs nothing.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

Daemon::Daemon(DaemonConfig config)
    : config_(std::move(config)),
      started_at_(std::chrono::system_clock::now()),
      store_(config_.state_dir),
      crashes_(store_, /*flushes=*/&crash_retry_),  // built next; only its address is kept
      crash_retry_(io_, crashes_),
      pauses_(io_, events_, store_, run_registry_, config_.access, config_.socket_path),
      history_(io_, events_, store_, run_registry_, config_.retention, /*pruned=*/this, config_.run_events),
      processes_(io_, store_, events_, process_launcher_, config_.helper_logs),
      jobs_(io_, events_, store_, crashes_, run_registry_, process_launcher_, config_.access,
            JobEnvironment{monitor_path(), python_shim_dir(), config_.socket_path, config_.run_output},
            /*drain=*/*this),
      runs_(io_, events_, store_, run_registry_, /*watcher=*/jobs_),
      dispatcher_(operation_table(*this), /*batches=*/this),
      server_(io_, dispatcher_, config_.hello_timeout, /*peers=*/*this),
      stop_signals_(io_, SIGTERM, SIGINT) {
}

void Daemon::batch_ended() {
  // Before the session commits its ring's records as read.
  history_.journal().end_batch();
}

void Daemon::ring_read_begins() { history_.journal().ring_read_begins(); }

void Daemon::ring_read_ended(std::uint64_t ring_id, std::uint64_t read_to) {
  history_.journal().ring_read_ended(ring_id, read_to);
}

std::optional<std::uint64_t> Daemon::ring_journaled_to(std::uint64_t ring_id, uid_t uid) {
  return history_.journal().take_journaled_to(ring_id, uid);
}

void Daemon::runs_pruned(const std::set<std::string>& run_ids) {
  crashes_.forget_runs(run_ids);
  jobs_.forget_runs(run_ids);
  pauses_.forget_runs(run_ids);
}

Daemon::~Daemon() = default;

int Daemon::open_listener(Readiness& readiness) {
  const bool root = ::geteuid() == 0;
  try {
    if (systemd_fd_) {
      if (auto path = socket_path_of(*systemd_fd_); !path.empty()) config_.socket_path = path;
      return *systemd_fd_;
    }
    UniqueFd fd(bind_listening_socket(config_.socket_path, root ? 0755 : 0700, root ? 0660 : 0600,
                                      socket_lock_ ? socket_lock_->previous_holder() : 0));
    if (root && !config_.socket_group.empty()) {
      const group* g = ::getgrnam(config_.socket_group.c_str());
      if (!g || ::chown(config_.socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
        throw std::runtime_error("cannot give socket " + config_.socket_path + " to group " + config_.socket_group);
    }
    return fd.release();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    readiness.failed(e.what());
    return -1;
  }
}

int Daemon::run(Readiness& readiness) {
  const bool root = ::geteuid() == 0;
  try {
    // Whoever owns or may write these directories could plant links at our
    // lock files and swap our socket for theirs (/tmp/lpd-$UID can be made
    // by anyone first): refuse both unless they are ours (or root's). The
    // socket may sit in root's sticky /tmp when asked: its lock is opened
    // O_NOFOLLOW there, and clients check who serves the socket.
    const auto slash = config_.socket_path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      const std::string socket_dir = config_.socket_path.substr(0, slash);
      {
        // lpd's umask (main.cpp) is private; root's socket directory is
        // meant to be listable (0755), as systemd's RuntimeDirectory makes it.
        const mode_t private_umask = ::umask(022);
        make_directories(socket_dir, root ? 0755 : 0700);
        ::umask(private_umask);
      }
      require_trusted_directory(socket_dir, /*allow_shared_sticky=*/true);
    }
    make_directories(config_.state_dir, root ? 0711 : 0700);
    require_trusted_directory(config_.state_dir, /*allow_shared_sticky=*/false);
    make_private(config_.state_dir, root ? 0711 : 0700);
    // From here on private unless said otherwise: lpd's files 0600, its
    // directories 0711 (a user can reach a file of theirs by its path, but
    // list nothing). The state tree holds every user's argv, environment
    // and output. Children start with umask 022 again (the launcher,
    // lpd-monitor).
    ::umask(S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH);
    pid_t holder = 0;
    systemd_fd_ = systemd_listen_fd();
    socket_from_systemd_ = systemd_fd_.has_value();
    if (!socket_from_systemd_) {
      // First the socket, so a second `lpd start` names what the user asked for.
      socket_lock_ = FileLock::try_acquire(config_.socket_path + ".lock", &holder);
      if (!socket_lock_) {
        throw AlreadyRunning("lpd is already running on socket " + config_.socket_path +
                             (holder > 0 ? " (pid " + std::to_string(holder) + ")" : ""));
      }
    }
    state_lock_ = FileLock::try_acquire(config_.state_dir + "/lpd.lock", &holder);
    if (!state_lock_) {
      throw AlreadyRunning("another lpd" + (holder > 0 ? " (pid " + std::to_string(holder) + ")" : std::string()) +
                           " is using state directory " + config_.state_dir);
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    readiness.failed(e.what());
    return 1;
  }

  UniqueFd listen_fd(open_listener(readiness));
  if (!listen_fd) return 1;

  if (auto why = reserve_.hold(config_.state_dir); !why.empty())
    spdlog::warn("cannot reserve space in {} for the records of a stop on a full disk: {}", config_.state_dir, why);
  try {
    restore_state();
  } catch (const std::exception& e) {
    spdlog::error("cannot restore state from {}: {}", config_.state_dir, e.what());
    readiness.failed(std::string("cannot restore state: ") + e.what());
    return 1;
  }

  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);
  stop_signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("received signal {}, shutting down", signo);
    request_stop();
  });

  if (!start_http(readiness)) {  // before serving, so a refusal leaves nothing behind
    listen_fd.reset();
    if (!socket_from_systemd_) ::unlink(config_.socket_path.c_str());
    return 1;
  }
  server_.set_connections_per_user(config_.connections_per_user);
  server_.start(listen_fd.release());
  spdlog::info("lpd pid {} listening on {}{} (state {})", ::getpid(), config_.socket_path,
               socket_from_systemd_ ? " (socket from systemd)" : "", config_.state_dir);
  readiness.ready(::getpid());
  notify_ready();
  if (auto interval = watchdog_ping_interval()) ping_watchdog(*interval);

  io_.run();

  // What a full disk refused is written now or lost with this process: the
  // reserve's blocks are given back for it first (the next lpd holds them
  // again), then one last try at each kind of record.
  if (const auto freed = reserve_.release())
    spdlog::debug("gave back the {} bytes reserved in {} for these last writes", freed, config_.state_dir);
  // Most needed first: what nothing else can rebuild.
  jobs_.last_try();           // a run's end (job.json, run.json)
  crash_retry_.last_try();    // crash records
  history_.stop();            // the journals' last lines, and what a full disk refused of them said
  jobs_.last_try_reports();   // a done run's junit.xml: the next lpd renders it again from the above
  if (!socket_from_systemd_) ::unlink(config_.socket_path.c_str());
  spdlog::info("lpd stopped");
  return 0;
}

void Daemon::ping_watchdog(std::chrono::microseconds interval) {
  notify_watchdog();
  if (!watchdog_) watchdog_.emplace(io_);
  watchdog_->expires_after(interval);
  watchdog_->async_wait([this, interval](boost::system::error_code ec) {
    if (!ec && !stopping_) ping_watchdog(interval);
  });
}

void Daemon::request_stop() {
  if (stopping_) return;
  stopping_ = true;
  notify_stopping();
  stop_signals_.cancel();
  if (watchdog_) watchdog_->cancel();
  server_.stop();
  if (http_) http_->stop();
  // Supervised processes are deliberately left running: the next lpd re-adopts them.
  io_.stop();
}

// -- the HTTP and WebSocket server --------------------------
bool Daemon::start_http(Readiness& readiness) {
  if (config_.http_listen.empty()) return true;
  try {
    // Its requests and WebSockets leave as socket connections do.
    http_ = std::make_unique<http::HttpServer>(io_, dispatcher_, events_, config_.access,
                                               [this](const Peer& peer) { peer_gone(peer); });
    const std::string address = http_->start(config_.http_listen, config_.http_allow_remote, config_.state_dir,
                                               config_.socket_path);
    spdlog::info("lpd HTTP and WebSocket API on http://{}/ (lpd's user's token in {}/http.token; every user: lpctl dashboard)",
                 address, config_.state_dir);
    return true;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    readiness.failed(e.what());
    http_.reset();
    return false;
  }
}

std::string Daemon::http_address() const { return http_ ? http_->address() : std::string(); }

void Daemon::peer_gone(const Peer& peer) {
  // lpd stopping closes every session itself: those peers did not leave,
  // and the next lpd takes them back as after a kill -9 (a shim's run stays
  // active, its pause pending; a pause surviving a restart).
  if (stopping_) return;
  spdlog::debug("peer pid {} (session {}) left", peer.pid, peer.session_id);
  events_.peer_gone(peer);
  pauses_.peer_gone(peer);
  jobs_.peer_gone(peer);
  runs_.peer_gone(peer);
  processes_.peer_gone(peer);
}

void Daemon::drain(std::uint64_t session_id) {
  if (auto session = server_.session(session_id)) session->drain_ring();
}

void Daemon::restore_state() {
  // (families restore their registries here, in dependency order)
  history_.open();  // first: event seqs go on past the previous lpd's
  runs_.restore();
  history_.restore_lost_batch();  // before anything is published: those seqs come first
  {
    // Before any shim hands its event ring back (see RingMark).
    std::vector<std::pair<std::string, uid_t>> active;
    for (const Run* run : run_registry_.list(/*include_ended=*/false)) active.emplace_back(run->run_id, run->owner);
    history_.journal().recall_ring_marks(active);
  }
  pauses_.restore();
  // One pass over crashes.jsonl; jobs then find a run's crashes in its index.
  const auto crashes = crashes_.load();
  spdlog::info("loaded {} crash record(s){}", crashes.records,
               crashes.renumbered ? " (" + std::to_string(crashes.renumbered) + " numbered now)" : std::string());
  jobs_.restore();
  {
    // Records of runs no longer kept: their lines wait in crashes.jsonl for
    // a compaction (CrashStore::forget_runs), or a crash came in after its
    // run was removed (before lpd refused those).
    std::set<std::string> removed;
    for (auto& run_id : crashes_.run_ids())
      if (!run_id.empty() && !run_registry_.find(run_id)) removed.insert(std::move(run_id));
    if (!removed.empty()) {
      crashes_.forget_runs(removed);
      spdlog::info("forgot the crash records of {} run(s) that retention or a prune removed", removed.size());
    }
  }
  processes_.restore();
  history_.start();  // last: retention sees every restored run
}

}  // namespace lpd::daemon
