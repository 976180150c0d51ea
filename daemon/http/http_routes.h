// what each HTTP request path does, without Beast.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/transport/dispatcher.h"
#include "daemon/http/relay_job_service.h"
#include "daemon/http/user_tokens.h"

namespace lpd::daemon::http {

/// One HTTP request as the routes see it (the Beast edge fills it in).
struct HttpRequest {
  std::string method;  // "GET", "POST", "DELETE", ...
  std::string path;    // the target up to '?'
  std::string query;   // after '?', "" when none
  std::string body;
  std::string authorization;  // the Authorization header ("" when none)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// HttpRoutes maps requests to lpd (docs: protocol/README.md "HTTP and
/// WebSocket"): pytest-relay-run's /jobs API (RelayJobService), POST
/// /api/op/{op} (any non-streaming operation through the Dispatcher, as a
/// Peer of the token's user: UserTokens) and the dashboard's static files, which
/// are served without a token (they hold no data). Everything else needs
/// the token (401 JSON otherwise). HEAD is answered as GET (the edge sends
/// no body); a method a path does not take is 405 with `Allow`.
///
/// No cookie is read or set: a cookie for 127.0.0.1 goes to every port of
/// it, so another local user's server would receive lpd's token from the
/// browser. The dashboard holds the token in memory only (storage of an
/// origin is read by whoever serves that port next) and sends it as
/// `Authorization: Bearer` (and as ?token= on /ws).
class HttpRoutes {
 public:
  using Respond = std::function<void(HttpResponse)>;
  using PeerGone = std::function<void(const Peer&)>;

  /// `tokens` outlives the routes.
  HttpRoutes(Dispatcher& dispatcher, RelayJobService& jobs, UserTokens& tokens, PeerGone peer_gone);

  /// the uid whose token `request` carries (`Authorization:
  /// Bearer`, or ?token= on GET /ws: a browser's WebSocket cannot send
  /// headers); nullopt when it carries none lpd gave out.
  std::optional<uid_t> token_uid(const HttpRequest& request) const;
  bool authorized(const HttpRequest& request) const { return token_uid(request).has_value(); }
  /// Answers `request` (not a WebSocket upgrade) through `respond`, once,
  /// now or later. A HEAD request is answered as its GET (the edge drops
  /// the body).
  void handle(const HttpRequest& request, Respond respond);
  /// The 401 reply: JSON saying where the token is and how to send it.
  static HttpResponse unauthorized();
  /// The methods `path` takes, as an `Allow` header value ("GET, HEAD",
  /// "POST", ...); "" for a path lpd does not serve (404 once authorized).
  static std::string_view allowed_methods(std::string_view path);
  /// Whether a request with this `Origin` header may act on the server at
  /// `host` (its Host header): no Origin (not a browser's cross-site
  /// request), or the origin http(s)://HOST itself. Another site's page is
  /// refused even with a token (defence in depth: lpd has no ambient
  /// credential such a page could ride on).
  static bool same_origin(std::string_view origin, std::string_view host);
  /// The Peer a request or WebSocket with `uid`'s token acts as (that
  /// user, http_peer); `peer_gone` must hear of it once it is done
  /// (registries drop what it held). nullptr when `uid` is no longer a
  /// user (answer unauthorized_user()).
  std::shared_ptr<Peer> new_peer(std::string client, uid_t uid) const;
  /// The 401 reply for a token whose user is gone from the user database.
  static HttpResponse unauthorized_user(uid_t uid);
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
  UserTokens& tokens_;  // not const: uid_of forgets a token whose user is gone
  PeerGone peer_gone_;
};

/// A JSON HTTP response: `body` dumped (invalid UTF-8 replaced).
HttpResponse json_response(int status, const json& body);

}  // namespace lpd::daemon::http
