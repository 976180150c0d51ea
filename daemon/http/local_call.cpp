// one request through lpd's dispatcher on behalf of an HTTP client.
#include "daemon/http/local_call.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "daemon/http/json_depth.h"
#include "daemon/os/run_as.h"

namespace lpd::daemon::http {
namespace {

std::uint64_t next_session = kFirstSession;  // one io_context, one thread

/// `uid`'s primary group per the passwd database; nullopt when it has no entry.
std::optional<gid_t> passwd_gid(uid_t uid) {
  const auto entry = user_entry(uid);
  if (!entry) return std::nullopt;
  return entry->gid;
}

/// Takes the one reply of one request and keeps itself alive until then
/// (a Responder holds its sink weakly).
class OneReply : public ReplySink, public std::enable_shared_from_this<OneReply> {
 public:
  OneReply(std::shared_ptr<Peer> peer, std::function<void(json)> done) : peer_(std::move(peer)), done_(std::move(done)) {}
  void hold() { self_ = shared_from_this(); }
  void send(std::string line) override {
    if (!done_) return;
    // a reply nesting too deep for re-serialising is an error reply.
    if (!json_depth_within(line)) {
      if (line.find("\"ok\"") == std::string::npos) return;  // a push
      json error{{"id", 1},
                 {"ok", false},
                 {"error", {{"code", "internal"}, {"message", std::string(kTooDeepMessage)}}}};
      auto done = std::move(done_);
      done_ = nullptr;
      auto keep = std::move(self_);
      return done(std::move(error));
    }
    json message = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!message.is_object() || !message.contains("ok")) return;  // a push
    auto done = std::move(done_);
    done_ = nullptr;
    auto keep = std::move(self_);  // gone when this call returns
    done(std::move(message));
  }
  bool open() const override { return static_cast<bool>(done_); }
  Peer& peer() { return *peer_; }

 private:
  std::shared_ptr<Peer> peer_;
  std::function<void(json)> done_;
  std::shared_ptr<OneReply> self_;
};

}  // namespace

std::optional<Peer> http_peer(std::string client_name, uid_t uid) {
  Peer peer;
  if (uid == ::geteuid()) {
    peer.uid = uid;
    peer.gid = ::getegid();
    const int count = ::getgroups(0, nullptr);
    if (count > 0) {
      peer.groups.resize(static_cast<std::size_t>(count));
      const int got = ::getgroups(count, peer.groups.data());
      peer.groups.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
    }
  } else {
    // another user's token: that user as the databases say, the
    // rights lpd gives them on the socket (may_access, run_as).
    const auto gid = passwd_gid(uid);
    if (!gid) return std::nullopt;
    peer.uid = uid;
    peer.gid = *gid;
    peer.groups = groups_of(uid, *gid);
  }
  peer.session_id = next_session++;
  peer.pid = ::getpid();
  peer.said_hello = true;
  peer.role = "http";
  peer.client_name = std::move(client_name);
  return peer;
}

bool is_known_user(uid_t uid) { return uid == ::geteuid() || passwd_gid(uid).has_value(); }

void call_op(Dispatcher& dispatcher, std::shared_ptr<Peer> peer, std::string op, json fields,
             std::function<void(json reply)> done) {
  auto sink = std::make_shared<OneReply>(peer, std::move(done));
  sink->hold();
  json request = std::move(fields);
  request["id"] = 1;
  request["op"] = std::move(op);
  dispatcher.dispatch_line(request.dump(-1, ' ', false, json::error_handler_t::replace), sink->peer(), sink);
}

int http_status_of(std::string_view code) {
  if (code == "bad_request") return 400;
  if (code == "permission_denied") return 403;
  if (code == "not_found" || code == "unknown_op") return 404;
  if (code == "conflict") return 409;
  if (code == "too_large") return 413;
  if (code == "limit_exceeded") return 429;
  if (code == "unavailable") return 503;
  if (code == "timeout") return 504;
  return 500;
}

}  // namespace lpd::daemon::http
