// lpd's HTTP and WebSocket server. The one file that
// includes Boost.Beast (compile cost: keep it that way); the rules it
// applies live in http_routes, relay_job_service and ws_frames.
#include "daemon/http/http_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "daemon/http/connection_limits.h"
#include "daemon/http/http_listen.h"
#include "daemon/http/http_routes.h"
#include "daemon/http/http_token.h"
#include "daemon/http/json_depth.h"
#include "daemon/http/peer_uid.h"
#include "daemon/http/relay_job_service.h"
#include "daemon/http/socket_admission.h"
#include "daemon/http/user_tokens.h"
#include "daemon/http/ws_frames.h"

namespace lpd::daemon::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 1024 * 1024;
/// A request must be complete this long after the connection (or the
/// previous reply): a client that sends half a request and stays is closed.
constexpr std::chrono::seconds kRequestTimeout{30};
/// the request's header (at most kMaxHeaderBytes) must be in this
/// long after the connection or the previous reply: one byte a second no
/// longer holds a connection for long.
constexpr std::chrono::seconds kHeaderTimeout{10};
/// A reply (or one WebSocket frame) must be taken within this.
constexpr std::chrono::seconds kWriteTimeout{60};
/// A WebSocket silent this long (pings unanswered) is closed.
constexpr std::chrono::seconds kWsIdleTimeout{60};
constexpr std::size_t kMaxStreamsPerWs = 32;
/// a WebSocket lpd closes with a reason (its token was rotated)
/// gets this long to answer the close frame before the socket is closed.
constexpr std::chrono::seconds kCloseTimeout{10};

void set_cloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

class WsConnection;

/// What every connection shares with the server, and which outlives it:
/// handlers still queued when lpd stops are destroyed after the server.
struct Shared {
  ConnectionLimits limits{::geteuid()};  // per peer uid; per token user once shown
  RefusalLog refusals;                   // one line per 10 s
  RefusalLog token_refusals;             // the same, for a token user over its share
  HttpRoutes* routes = nullptr;
  RelayJobService* jobs = nullptr;
  UserTokens* tokens = nullptr;  // a WebSocket's token is checked again on each request
  const AccessPolicy* access = nullptr;
  std::size_t connections = 0;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::function<void()>> closers;  // live connections' close()
  struct OpenWebSocket {
    uid_t user;  // whose token it showed
    std::weak_ptr<WsConnection> connection;
  };
  std::map<std::uint64_t, OpenWebSocket> websockets;  // open WebSockets (by closers' id)
  bool stopped = false;
};

/// the reply a request lpd was still working on gets when lpd
/// stops (written straight into the socket, so whole and small).
std::string stopping_reply_bytes(unsigned version) {
  // A job this request made goes on (its run outlives lpd, its table is
  // kept): what it did shows at GET /jobs once lpd is back.
  constexpr const char* kText =
      "lpd is stopping before it could answer; once it is back, GET /jobs shows whether this request made or "
      "changed a job (jobs and their runs outlive lpd) before sending it again";
  const std::string body = json{{"error", kText}, {"detail", kText}}.dump();
  return std::string(version == 10 ? "HTTP/1.0" : "HTTP/1.1") +
         " 503 Service Unavailable\r\nServer: lpd\r\nContent-Type: application/json\r\n"
         "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

HttpRequest to_request(const bhttp::request<bhttp::string_body>& req) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  const std::string_view target = req.target();
  const auto q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.body = req.body();
  r.authorization = std::string(req[bhttp::field::authorization]);
  return r;
}

/// Another site's page must not act, even with a token (defence
/// in depth; lpd reads no cookie, so such a page has no credential to ride).
bool origin_allowed(const bhttp::request<bhttp::string_body>& req) {
  return HttpRoutes::same_origin(req[bhttp::field::origin], req[bhttp::field::host]);
}

// -- the WebSocket ----------------------------------------------------------

class WsConnection : public ReplySink, public std::enable_shared_from_this<WsConnection> {
 public:
  /// `peer_uid`, `token_user`: the admission (ConnectionLimits) it takes
  /// over, authenticated as `token_user`'s. `peer`: whom it acts as
  /// (the token's user).
  WsConnection(std::shared_ptr<Shared> shared, beast::tcp_stream stream, std::optional<uid_t> peer_uid,
               uid_t token_user, std::shared_ptr<Peer> peer)
      : shared_(std::move(shared)), ws_(std::move(stream)), write_timer_(ws_.get_executor()),
        close_timer_(ws_.get_executor()), peer_(std::move(peer)), peer_uid_(peer_uid), token_user_(token_user) {
    ++shared_->connections;
    id_ = shared_->next_id++;
  }
  ~WsConnection() override {
    --shared_->connections;
    shared_->closers.erase(id_);
    shared_->websockets.erase(id_);
    shared_->limits.release(peer_uid_, token_user_);
  }

  void accept(bhttp::request<bhttp::string_body> request) {
    request_ = std::move(request);
    shared_->closers[id_] = [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->close();
    };
    // Closed with a reason when that user's token is replaced or forgotten.
    shared_->websockets[id_] = Shared::OpenWebSocket{peer_->uid, weak_from_this()};
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket's own timeouts rule from here
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = kRequestTimeout;
    timeout.idle_timeout = kWsIdleTimeout;
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.read_message_max(kMaxBodyBytes);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "lpd"); }));
    ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->close();
      self->opened();
    });
  }

  // ReplySink: lines of the dispatcher (replies, pushes) become frames.
  void send(std::string line) override {
    if (!open_ || shared_->stopped) return;
    auto f = frame_of_line(line, [this](const std::string& run_id) { return shared_->jobs->is_relay_run(run_id); });
    if (f) offer(std::move(*f), FrameKind::kEvent);
  }
  bool open() const override { return open_; }
  bool congested() const override { return out_.congested(); }
  void when_drained(std::function<void()> resume) override {
    if (!open_) return;
    if (!writing_ || out_.drained()) {
      asio::post(ws_.get_executor(), std::move(resume));
      return;
    }
    drain_waiters_.push_back(std::move(resume));
  }
  StreamSlot claim_stream(std::string_view what) override {
    if (streams_ >= kMaxStreamsPerWs)
      throw protocol::Error(protocol::ErrorCode::kLimitExceeded,
                            "a WebSocket may hold at most " + std::to_string(kMaxStreamsPerWs) + " streams; " +
                                std::string(what) + " is refused until one ends");
    ++streams_;
    return StreamSlot(nullptr, [weak = weak_from_this()](void*) {
      if (auto self = weak.lock()) --self->streams_;
    });
  }

  void close() {
    if (!open_) {
      if (shared_->stopped) shut();  // lpd stops during close_with's handshake: no waiting for it
      return;
    }
    open_ = false;
    // lpd stops: say so (1001 going away) when no frame is half
    // written; one small frame into the socket's buffer, never waiting.
    if (shared_->stopped && handshaken_ && !writing_) {
      const std::string bye = close_frame_bytes(1001, "lpd is stopping");
      (void)::send(beast::get_lowest_layer(ws_).socket().native_handle(), bye.data(), bye.size(),
                   MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    write_timer_.cancel();
    drain_waiters_.clear();
    out_.clear();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    leave_registries();
  }

  /// closes with a close frame saying why (`code`, `reason`:
  /// 1008 "token rotated"), sent after the frame being written, if any;
  /// the socket is closed once the client answers, or kCloseTimeout later.
  void close_with(websocket::close_code code, const std::string& reason) {
    if (!open_ || shared_->stopped || !handshaken_) return close();
    open_ = false;
    drain_waiters_.clear();
    leave_registries();
    close_timer_.expires_after(kCloseTimeout);
    close_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->shut();
    });
    ws_.async_close(websocket::close_reason(code, reason), [self = shared_from_this()](beast::error_code) {
      self->close_timer_.cancel();
      self->shut();
    });
  }

 private:
  /// The socket closed at once, whatever is pending (close_with's end).
  void shut() {
    write_timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  /// What this WebSocket held in the registries is let go (once).
  void leave_registries() {
    if (shared_->stopped || left_) return;  // lpd stops: registries keep what they have for the next lpd
    left_ = true;
    if (listener_) shared_->jobs->unlisten(listener_);
    if (peer_) shared_->routes->peer_done(*peer_);
  }

  void opened() {
    if (!open_ || shared_->stopped) return;
    handshaken_ = true;
    listener_ = shared_->jobs->listen([weak = weak_from_this()](const json& payload, uid_t owner) {
      auto self = weak.lock();
      if (!self || !self->open_) return;
      // job messages are never dropped (FrameKind::kJob). Only the
      // owner's: job ids are each user's own (RelayJobService), so another
      // user's "smoke" must not look like this client's.
      if (self->peer_->uid == owner)
        self->offer(frame("job", payload.dump(-1, ' ', false, json::error_handler_t::replace)), FrameKind::kJob);
    });
    // Every event this peer may see, through events.subscribe and its gates.
    auto self = shared_from_this();
    const json subscribe{{"id", std::string(kEventsRequestId)}, {"op", "events.subscribe"}};
    shared_->routes->dispatcher().dispatch_line(subscribe.dump(), *peer_, self);
    read_next();
  }

  void read_next() {
    if (!open_) return;
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      std::string text = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      self->handle_request(text);
      // A client that does not read its replies is read no further until it does.
      if (self->out_.congested())
        self->when_drained([weak = self->weak_from_this()] {
          if (auto s = weak.lock()) s->read_next();
        });
      else
        self->read_next();
    });
  }

  /// {"id": N, "op": "...", "fields": {...}} from the client, as one protocol line.
  void handle_request(const std::string& text) {
    if (!open_) return;
    // the uid may have been given to another user since the upgrade.
    if (!shared_->tokens->still_acts(peer_->uid))
      return close_with(websocket::close_code::policy_error, "token's user is gone");
    auto refuse = [this](const json& id, const std::string& why) {
      send(protocol::encode_reply_error(id, protocol::ErrorCode::kBadRequest, why));
    };
    // copying and re-serialising recurse per level: bounded first.
    if (!json_depth_within(text)) return refuse(nullptr, std::string(kTooDeepMessage));
    json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!message.is_object() || !message.contains("op") || !message["op"].is_string())
      return refuse(nullptr, "a WebSocket request is {\"id\": N, \"op\": \"...\", \"fields\": {...}}");
    json line = json::object();
    if (auto f = message.find("fields"); f != message.end() && !f->is_null()) {
      if (!f->is_object()) return refuse(message.value("id", json()), "\"fields\" must be an object");
      line = *f;
    }
    line.erase("id");
    line["op"] = message["op"];
    if (auto id = message.find("id"); id != message.end()) line["id"] = *id;
    shared_->routes->dispatcher().dispatch_line(line.dump(-1, ' ', false, json::error_handler_t::replace), *peer_,
                                                shared_from_this());
    shared_->routes->dispatcher().end_of_batch();
  }

  void offer(std::string f, FrameKind kind) {
    std::string_view type;
    if (kind == FrameKind::kEvent && f.rfind("{\"type\":\"", 0) == 0) {
      const std::string_view rest = std::string_view(f).substr(9);
      type = rest.substr(0, std::min<std::size_t>(rest.find('"'), 32));
    }
    out_.offer(std::move(f), kind, type);
    if (out_.overflowing()) {
      // Job frames are never dropped; a client that takes none is let go.
      spdlog::info("http: a WebSocket took none of its last {} MiB of job messages, closing it",
                   WsOutbox::kMaxJobBytes >> 20);
      return close();
    }
    write_more();
  }

  void write_more() {
    if (writing_ || !open_ || !out_.front()) return;
    writing_ = true;
    ws_.text(true);
    write_timer_.expires_after(kWriteTimeout);
    write_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        spdlog::info("http: a WebSocket took no frame for {} s, closing it", kWriteTimeout.count());
        self->close();
      }
    });
    ws_.async_write(asio::buffer(*out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      self->write_timer_.cancel();
      if (!self->open_) return;
      if (ec) return self->close();
      self->out_.written();
      if (self->out_.drained() && !self->drain_waiters_.empty()) {
        auto waiters = std::move(self->drain_waiters_);
        self->drain_waiters_.clear();
        for (auto& resume : waiters) asio::post(self->ws_.get_executor(), std::move(resume));
      }
      self->write_more();
    });
  }

  std::shared_ptr<Shared> shared_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer write_timer_;
  asio::steady_timer close_timer_;  // close_with's bound
  bhttp::request<bhttp::string_body> request_;
  beast::flat_buffer in_;
  WsOutbox out_;
  bool writing_ = false;
  bool open_ = true;
  std::vector<std::function<void()>> drain_waiters_;
  std::size_t streams_ = 0;
  std::shared_ptr<Peer> peer_;
  std::uint64_t listener_ = 0;
  std::uint64_t id_ = 0;
  std::optional<uid_t> peer_uid_;
  uid_t token_user_;
  bool handshaken_ = false;
  bool left_ = false;  // leave_registries() ran
};

// -- one HTTP connection ------------------------------------------------------

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  /// `peer_uid`: whose connection ConnectionLimits admitted it as.
  HttpConnection(std::shared_ptr<Shared> shared, tcp::socket socket, std::optional<uid_t> peer_uid)
      : shared_(std::move(shared)), stream_(std::move(socket)), peer_uid_(peer_uid) {
    ++shared_->connections;
    id_ = shared_->next_id++;
  }
  ~HttpConnection() {
    --shared_->connections;
    shared_->closers.erase(id_);
    if (!handed_over_) shared_->limits.release(peer_uid_, token_user_);
  }

  void start() {
    shared_->closers[id_] = [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->close();
    };
    read_request();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    // lpd stops while this request is being worked on (a
    // collect-only POST /jobs): a 503 rather than an empty reply; small,
    // into the socket's buffer, never waiting.
    if (shared_->stopped && answering_) {
      const std::string reply = stopping_reply_bytes(version_);
      (void)::send(stream_.socket().native_handle(), reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

 private:
  void read_request() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    // the header within kHeaderTimeout, the whole request within kRequestTimeout.
    stream_.expires_after(kHeaderTimeout);
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->closed_) return self->on_read(ec);
      self->stream_.expires_after(kRequestTimeout);
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code e, std::size_t) { self->on_read(e); });
    });
  }

  /// the peer showed a token: it no longer counts as its uid's
  /// unauthenticated connection. It counts as the token user's
  /// instead; false (the request is refused) when that user holds its
  /// share already (ConnectionLimits::authenticate), logged at most once
  /// per RefusalLog::kInterval.
  bool note_authenticated(std::optional<uid_t> token_user) {
    if (token_user_ || !token_user) return true;
    if (shared_->limits.authenticate(peer_uid_, *token_user)) {
      token_user_ = token_user;
      return true;
    }
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (const auto count = shared_->token_refusals.refused(now))
      spdlog::warn("http: refused {} request(s) with a valid token in the last {} s: uid {} holds {} connections "
                   "(at most {} each), {} open in all",
                   *count, static_cast<int>(RefusalLog::kInterval), *token_user,
                   shared_->limits.authenticated(*token_user), ConnectionLimits::kMaxAuthenticatedPerUid,
                   shared_->connections);
    return false;
  }

  /// the reply to a request note_authenticated() refused.
  void refuse_over_share(uid_t token_user) {
    const std::string message =
        "uid " + std::to_string(token_user) + " holds " + std::to_string(ConnectionLimits::kMaxAuthenticatedPerUid) +
        " connections to lpd's HTTP server already, the most one user may: close some (other dashboard tabs, "
        "WebSockets) and try again";
    HttpResponse response = json_response(503, json{{"error", message}, {"detail", message}});
    response.headers.emplace_back("Retry-After", "10");
    write(std::move(response), false);
  }

  void on_read(beast::error_code ec) {
    if (closed_ || shared_->stopped) return;
    head_ = false;  // until this request says HEAD, replies carry their body
    if (ec == bhttp::error::body_limit) return reply_and_close(413, "the request body is over 1 MiB");
    if (ec == bhttp::error::header_limit) return reply_and_close(431, "the request headers are over 16 KiB");
    if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return reply_and_close(400, "not an HTTP/1.1 request: " + ec.message());
    if (ec) return close();  // the client left, or was too slow
    auto& req = parser_->get();
    HttpRequest request = to_request(req);
    if (websocket::is_upgrade(req)) {
      if (request.path != "/ws") return reply_and_close(404, "no WebSocket at " + request.path + "; use /ws");
      if (!origin_allowed(req)) return reply_and_close(403, "a WebSocket must come from this server's own page");
      // the WebSocket acts as the token's user.
      const auto token_user = shared_->routes->token_uid(request);
      if (!token_user) return write(HttpRoutes::unauthorized(), false);
      auto peer = shared_->routes->new_peer("websocket", *token_user);
      if (!peer) return write(HttpRoutes::unauthorized_user(*token_user), false);
      if (!note_authenticated(token_user)) return refuse_over_share(*token_user);
      closed_ = true;  // the stream is the WebSocket's now
      shared_->closers.erase(id_);
      handed_over_ = true;  // its admission too
      auto ws = std::make_shared<WsConnection>(shared_, std::move(stream_), peer_uid_, *token_user_, std::move(peer));
      ws->accept(parser_->release());
      return;
    }
    const bool keep_alive = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == bhttp::verb::head;
    if (!origin_allowed(req))
      return reply_and_close(403, "a request from another site's page is refused: use this server's own page");
    if (!token_user_) {
      const auto token_user = shared_->routes->token_uid(request);
      if (!note_authenticated(token_user)) return refuse_over_share(*token_user);
    }
    // parsing is iterative, but copying and dump() recurse per level.
    if (token_user_ && !json_depth_within(request.body)) {
      json error = request.path.rfind("/api/op/", 0) == 0
                       ? json{{"ok", false}, {"error", {{"code", "bad_request"}, {"message", kTooDeepMessage}}}}
                       : json{{"error", kTooDeepMessage}, {"detail", kTooDeepMessage}};
      return write(json_response(400, error), keep_alive);
    }
    stream_.expires_never();  // lpd works on it (a collect-only job answers once collected)
    answering_ = true;
    shared_->routes->handle(request, [self = shared_from_this(), keep_alive](HttpResponse response) {
      self->write(std::move(response), keep_alive);
    });
  }

  void reply_and_close(int status, const std::string& message) {
    write(json_response(status, json{{"error", message}, {"detail", message}}), false);
  }

  void write(HttpResponse response, bool keep_alive) {
    if (closed_ || shared_->stopped) return;
    answering_ = false;
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(response.status), version_ ? version_ : 11);
    res->set(bhttp::field::server, "lpd");
    res->set(bhttp::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    res->set("Referrer-Policy", "no-referrer");  // the ?token= never leaves in a Referer
    res->set("X-Frame-Options", "DENY");
    if (!response.content_type.empty()) res->set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res->insert(name, value);
    res->keep_alive(keep_alive);
    if (head_) {
      // HEAD: GET's headers, Content-Length included, and no body (a body
      // here would be read as the next reply on a kept-alive connection).
      res->content_length(response.body.size());
    } else {
      res->body() = std::move(response.body);
      res->prepare_payload();
    }
    stream_.expires_after(kWriteTimeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive) return self->close();
      self->read_request();
    });
  }

  std::shared_ptr<Shared> shared_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kMaxHeaderBytes + 8192};
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  unsigned version_ = 11;
  bool head_ = false;  // the request being answered is a HEAD
  bool closed_ = false;
  std::uint64_t id_ = 0;
  std::optional<uid_t> peer_uid_;
  std::optional<uid_t> token_user_;  // whose token was shown on this connection (counted as theirs)
  bool handed_over_ = false;    // to a WebSocket, with its admission
  bool answering_ = false;      // lpd works on its request
};

TcpEnd tcp_end(const tcp::endpoint& endpoint) {
  TcpEnd end;
  end.port = endpoint.port();
  if (endpoint.address().is_v6()) {
    end.v6 = true;
    end.address = endpoint.address().to_v6().to_bytes();
  } else {
    const auto bytes = endpoint.address().to_v4().to_bytes();
    std::copy(bytes.begin(), bytes.end(), end.address.begin());
  }
  return end;
}

/// The HTTP side's answers to UserTokens: one permission model (a token
/// acts only while its user may connect to the Unix socket: removed from
/// --socket-group, refused at once), and a revoked token's WebSockets close.
class TokenWatcher final : public UserTokens::Watcher {
 public:
  TokenWatcher(asio::io_context& io, std::shared_ptr<Shared> shared, std::string socket_path)
      : io_(io), shared_(std::move(shared)), socket_path_(std::move(socket_path)) {}

  bool may_connect(uid_t uid) override { return socket_admits_now(socket_path_, uid); }

  void revoked(uid_t uid, const std::string& why) override {
    // The old token stops at once: its user's open WebSockets are closed
    // too (requests are checked one by one anyway), with a close
    // frame, 1008 policy violation and the reason, so a client can tell
    // it from a dropped connection. Posted: the rotation is an operation
    // being handled, and closing tells the registries a peer left, which
    // they hear from the event loop, not from inside it.
    std::vector<std::weak_ptr<WsConnection>> open;
    for (const auto& [id, ws] : shared_->websockets)
      if (ws.user == uid) open.push_back(ws.connection);
    asio::post(io_, [open = std::move(open), why] {
      for (const auto& weak : open)
        if (auto ws = weak.lock()) ws->close_with(websocket::close_code::policy_error, why);
    });
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  std::string socket_path_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(asio::io_context& io, Dispatcher& dispatcher, EventBus& events, const AccessPolicy& access,
       std::function<void(const Peer&)> peer_gone)
      : io(io), dispatcher(dispatcher), events(events), access(access), peer_gone(std::move(peer_gone)),
        retry(io) {}

  void accept_next() {
    acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || shared->stopped) return;
      if (ec) {
        // Out of descriptors, most likely: try again in a while, not in a loop.
        spdlog::warn("http: accept: {}; trying again in 1 s", ec.message());
        retry.expires_after(std::chrono::seconds(1));
        retry.async_wait([this](beast::error_code e) {
          if (!e && !shared->stopped) accept_next();
        });
        return;
      }
      set_cloexec(socket.native_handle());
      // whose connection it is (a loopback peer's uid), and
      // whether that user may hold one more (ConnectionLimits).
      std::optional<uid_t> uid;
      beast::error_code e1, e2;
      const tcp::endpoint remote = socket.remote_endpoint(e1);
      const tcp::endpoint local = socket.local_endpoint(e2);
      if (!e1 && !e2) uid = loopback_peer_uid(tcp_end(remote), tcp_end(local));
      if (!shared->limits.admit(uid)) {
        const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        if (const auto count = shared->refusals.refused(now))
          spdlog::warn("http: refused {} new connection(s) in the last {} s ({} open; {} from uid {} not yet "
                       "authenticated, at most {} each)",
                       *count, static_cast<int>(RefusalLog::kInterval), shared->connections,
                       shared->limits.unauthenticated(uid), uid ? std::to_string(*uid) : std::string("unknown"),
                       ConnectionLimits::kMaxUnauthenticatedPerUid);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<HttpConnection>(shared, std::move(socket), uid)->start();
      }
      accept_next();
    });
  }

  asio::io_context& io;
  Dispatcher& dispatcher;
  EventBus& events;
  const AccessPolicy& access;
  std::function<void(const Peer&)> peer_gone;
  std::unique_ptr<RelayJobService> jobs;
  std::unique_ptr<TokenWatcher> token_watcher;  // before tokens: it outlives them
  std::unique_ptr<UserTokens> tokens;
  std::unique_ptr<HttpRoutes> routes;
  std::optional<tcp::acceptor> acceptor;
  asio::steady_timer retry;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::string address;
};

HttpServer::HttpServer(asio::io_context& io, Dispatcher& dispatcher, EventBus& events, const AccessPolicy& access,
                       std::function<void(const Peer&)> peer_gone)
    : impl_(std::make_unique<Impl>(io, dispatcher, events, access, std::move(peer_gone))) {}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::start(const std::string& listen, bool allow_remote, const std::string& state_dir,
                              const std::string& socket_path) {
  const ListenAddress where = parse_listen_address(listen, allow_remote);
  Impl& s = *impl_;
  s.jobs = std::make_unique<RelayJobService>(s.dispatcher, s.events, s.access, state_dir);
  // lpd's own token (http.token) and every user's (http-tokens/<uid>).
  s.token_watcher = std::make_unique<TokenWatcher>(s.io, s.shared, socket_path);
  s.tokens = std::make_unique<UserTokens>(state_dir, ::geteuid(), passwd_entry, s.token_watcher.get());
  s.routes = std::make_unique<HttpRoutes>(s.dispatcher, *s.jobs, *s.tokens, s.peer_gone);
  s.shared->routes = s.routes.get();
  s.shared->jobs = s.jobs.get();
  s.shared->tokens = s.tokens.get();
  s.shared->access = &s.access;
  const tcp::endpoint endpoint(asio::ip::make_address(where.host), where.port);
  s.acceptor.emplace(s.io);
  beast::error_code ec;
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) set_cloexec(s.acceptor->native_handle());
  if (!ec) s.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("--http " + listen + ": cannot listen: " + ec.message());
  const tcp::endpoint bound = s.acceptor->local_endpoint();
  s.address = bound.address().is_v6() ? "[" + bound.address().to_string() + "]:" + std::to_string(bound.port())
                                      : bound.address().to_string() + ":" + std::to_string(bound.port());
  s.accept_next();
  return s.address;
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.shared->stopped) return;
  s.shared->stopped = true;
  beast::error_code ignored;
  if (s.acceptor) s.acceptor->close(ignored);
  s.retry.cancel();
  auto closers = s.shared->closers;
  for (auto& [id, close] : closers) close();
  s.shared->routes = nullptr;
  s.shared->jobs = nullptr;
  s.shared->tokens = nullptr;
}

const std::string& HttpServer::address() const { return impl_->address; }

UserTokens* HttpServer::tokens() { return impl_->tokens.get(); }


}  // namespace lpd::daemon::http
