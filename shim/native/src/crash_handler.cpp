#include "shim/native/src/crash_handler.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <mutex>

#include <sys/socket.h>
#include <unistd.h>

#include "shim/native/src/crash_line.h"

namespace lpd::shim::crash {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr std::size_t kSignalCount = sizeof(kSignals) / sizeof(kSignals[0]);
constexpr std::size_t kNodeidBytes = 4096;
constexpr std::size_t kAltStackBytes = 64 * 1024;

struct NodeidBuffer {
  char text[kNodeidBytes];
  std::size_t length;
};

std::atomic<int> g_fd{-1};
std::atomic<pid_t> g_owner{0};
NodeidBuffer g_nodeid[2];
std::atomic<int> g_active{0};
std::atomic<bool> g_reported{false};
struct sigaction g_previous[kSignalCount];
char g_line[kNodeidBytes + 128];

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<pid_t>::is_always_lock_free &&
              std::atomic<bool>::is_always_lock_free);

void send_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void report(int sig) {
  if (g_reported.exchange(true)) return;  // one notice per process, even if threads crash together
  const int fd = g_fd.load();
  if (fd < 0 || g_owner.load() != ::getpid()) return;
  const NodeidBuffer& nodeid = g_nodeid[g_active.load()];
  const std::size_t n = format_crash_line(sig, nodeid.text, nodeid.length, g_line, sizeof(g_line));
  if (n > 0) send_all(fd, g_line, n);
}

void chain(int sig, siginfo_t* info, void* context) {
  for (std::size_t i = 0; i < kSignalCount; ++i) {
    if (kSignals[i] != sig) continue;
    const struct sigaction& prev = g_previous[i];
    if (prev.sa_flags & SA_SIGINFO) {
      if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
      prev.sa_handler(sig);
    }
  }
}

void on_crash(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  report(sig);
  // A handler installed before ours (a sanitizer, a framework) gets its turn;
  // it may end the process itself.
  chain(sig, info, context);
  // Then the default action, so the exit status is a true death by `sig`:
  // the re-raised signal stays pending until this handler returns (a fault
  // would also recur when the faulting instruction runs again).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
  errno = saved_errno;
}

void ensure_alt_stack() {
  stack_t current{};
  if (sigaltstack(nullptr, &current) != 0) return;
  if (!(current.ss_flags & SS_DISABLE)) return;  // someone (ASan, the user) set one already
  // Kept for the life of the process, in a global so leak checkers see it reachable.
  static void* memory = std::malloc(kAltStackBytes);
  if (memory == nullptr) return;
  stack_t stack{};
  stack.ss_sp = memory;
  stack.ss_size = kAltStackBytes;
  sigaltstack(&stack, nullptr);
}

}  // namespace

void set_connection(int fd, pid_t owner) {
  g_owner.store(owner);
  g_fd.store(fd);
}

void set_current_test(std::string_view nodeid) {
  const int next = 1 - g_active.load();
  NodeidBuffer& buffer = g_nodeid[next];
  buffer.length = json_escape_into(nodeid, buffer.text, sizeof(buffer.text));
  g_active.store(next);
}

bool install() {
  static std::once_flag once;
  static bool installed = false;
  std::call_once(once, [] {
    ensure_alt_stack();
    installed = true;
    for (std::size_t i = 0; i < kSignalCount; ++i) {
      struct sigaction action {};
      action.sa_sigaction = on_crash;
      action.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&action.sa_mask);
      if (sigaction(kSignals[i], &action, &g_previous[i]) != 0) installed = false;
    }
  });
  return installed;
}

}  // namespace lpd::shim::crash
