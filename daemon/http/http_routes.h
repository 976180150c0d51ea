// issue 16 (h16api): what each HTTP request path does, without Beast.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/dispatcher.h"
#include "daemon/http/relay_job_service.h"

namespace lpd::daemon::http {

/// One HTTP request as the routes see it (the Beast edge fills it in).
struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", ...
  std::string path;    // the target up to '?'
  std::string query;   // after '?', "" when none
  std::string body;
  std::string authorization;
  std::string cookie;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The result of checking a request's token.
struct Authorization {
  bool ok = false;
  bool set_cookie = false;   // the token came as ?token=: the reply sets lpd_token
  bool from_cookie = false;  // a browser's cookie: the edge checks Origin
};

/// HttpRoutes maps requests to lpd (docs: protocol/README.md "HTTP and
/// WebSocket"): pytest-relay-run's /jobs API (RelayJobService), POST
/// /api/op/{op} (any non-streaming operation through the Dispatcher, as a
/// Peer of the token's identity) and the dashboard's static files, which
/// are served without a token (they hold no data). Everything else needs
/// the token (401 JSON otherwise).
class HttpRoutes {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using PeerGone = std::function<void(const Peer&)>;

  HttpRoutes(Dispatcher& dispatcher, RelayJobService& jobs, std::string token, PeerGone peer_gone);

  Authorization authorize(const HttpRequest& request) const;
  /// Answers `request` (not a WebSocket upgrade) through `respond`, once,
  /// now or later.
  void handle(const HttpRequest& request, Respond respond);
  /// The 401 reply.
  static HttpResponse unauthorized();
  /// The Set-Cookie header value that stores the token in the browser.
  std::string cookie_header() const;
  /// The Peer a request or WebSocket acts as; `peer_gone` must hear of it
  /// once it is done (registries drop what it held).
  std::shared_ptr<Peer> new_peer(std::string client) const;
  void peer_done(const Peer& peer) const {
    if (peer_gone_) peer_gone_(peer);
  }
  /// Whether `op` streams pushes (refused on POST /api/op: use /ws).
  static bool is_streaming_op(std::string_view op);

  Dispatcher& dispatcher() { return dispatcher_; }
  RelayJobService& jobs() { return jobs_; }

 private:
  void handle_jobs(const HttpRequest& request, std::shared_ptr<Peer> peer, Respond respond);
  void handle_op(const std::string& op, const HttpRequest& request, std::shared_ptr<Peer> peer, Respond respond);

  Dispatcher& dispatcher_;
  RelayJobService& jobs_;
  std::string token_;
  PeerGone peer_gone_;
};

/// A JSON HTTP response: `body` dumped (invalid UTF-8 replaced).
HttpResponse json_response(int status, const json& body);

}  // namespace lpd::daemon::http
