// what each HTTP request path does, without Beast.
#include "daemon/http/http_routes.h"

#include <array>

#include "daemon/http/dashboard/dashboard_assets.h"
#include "daemon/http/http_token.h"
#include "daemon/http/local_call.h"

namespace lpd::daemon::http {
namespace {

HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", message}, {"detail", message}});
}

/// The body as JSON: an empty body is {}; not JSON is nullopt and `why`.
std::optional<json> parse_body(const std::string& body, std::string& why) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    why = std::string("the request body is not valid JSON: ") + e.what();
    return std::nullopt;
  }
}

HttpResponse of_job_reply(JobReply reply) {
  HttpResponse response;
  response.status = reply.status;
  if (reply.status == 204) {
    response.content_type.clear();
  } else {
    response = json_response(reply.status, reply.body);
  }
  if (!reply.location.empty()) response.headers.emplace_back("Location", reply.location);
  return response;
}

/// Whether `method` is one of the comma-separated `allow` ("GET, HEAD").
bool method_listed(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    const auto comma = allow.find(',');
    std::string_view one = allow.substr(0, comma);
    while (one.starts_with(' ')) one.remove_prefix(1);
    if (one == method) return true;
    allow = comma == std::string_view::npos ? std::string_view() : allow.substr(comma + 1);
  }
  return false;
}

}  // namespace

HttpResponse json_response(int status, const json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

HttpRoutes::HttpRoutes(Dispatcher& dispatcher, RelayJobService& jobs, UserTokens& tokens, PeerGone peer_gone)
    : dispatcher_(dispatcher), jobs_(jobs), tokens_(tokens), peer_gone_(std::move(peer_gone)) {}

std::optional<uid_t> HttpRoutes::token_uid(const HttpRequest& request) const {
  const bool websocket = request.path == "/ws" && request.method == "GET";
  const auto offered = offered_token(request.authorization, request.query, websocket);
  if (!offered) return std::nullopt;
  return tokens_.uid_of(offered->token);
}

HttpResponse HttpRoutes::unauthorized() {
  HttpResponse response = error_response(
      401,
      "missing or wrong token: run \"lpctl dashboard\" on lpd's host for your own token and the URL to open "
      "(each user has one; it acts as that user), then send \"Authorization: Bearer TOKEN\". In a browser, "
      "open the URL it prints once, or paste the token in the dashboard's form.");
  response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lpd\"");
  return response;
}

HttpResponse HttpRoutes::unauthorized_user(uid_t uid) {
  HttpResponse response = error_response(
      401, "the token belongs to uid " + std::to_string(uid) + ", which is no longer in the user database");
  response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lpd\"");
  return response;
}

std::string_view HttpRoutes::allowed_methods(std::string_view path) {
  if (path == "/ws") return "GET";
  if (path == "/jobs" || path == "/jobs/") return "GET, HEAD, POST, DELETE";
  if (path.rfind("/jobs/", 0) == 0) {
    const std::string_view rest = path.substr(6);
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return "GET, HEAD, DELETE";
    if (rest.substr(slash) == "/actions") return "POST";
    return "";
  }
  if (path.rfind("/api/op/", 0) == 0) return "POST";
  if (path.rfind("/api/", 0) != 0 && dashboard_asset(path)) return "GET, HEAD";
  return "";
}

bool HttpRoutes::same_origin(std::string_view origin, std::string_view host) {
  if (origin.empty()) return true;
  if (host.empty()) return false;
  for (std::string_view scheme : {"http://", "https://"})
    if (origin.size() == scheme.size() + host.size() && origin.starts_with(scheme) && origin.ends_with(host))
      return true;
  return false;
}

std::shared_ptr<Peer> HttpRoutes::new_peer(std::string client, uid_t uid) const {
  auto peer = http_peer(std::move(client), uid);
  if (!peer) return nullptr;
  return std::make_shared<Peer>(std::move(*peer));
}

bool HttpRoutes::is_streaming_op(std::string_view op) {
  static constexpr std::array<std::string_view, 9> kStreaming{
      "run.attach", "events.subscribe", "proc.logs", "pause.request", "pause.watch",
      "traceback.attach", "ring.attach", "notifications", "hello"};
  for (auto name : kStreaming)
    if (name == op) return true;
  return false;
}

void HttpRoutes::handle(const HttpRequest& original, Respond respond) {
  const std::string_view allow = allowed_methods(original.path);
  if (!allow.empty() && !method_listed(allow, original.method)) {
    HttpResponse response = error_response(405, "use " + std::string(allow) + " on " + original.path);
    response.headers.emplace_back("Allow", std::string(allow));
    return respond(std::move(response));
  }
  // HEAD is GET without the body (RFC 9110 section 9.3.2): the edge drops it.
  HttpRequest request = original;
  if (request.method == "HEAD") request.method = "GET";
  if (request.method == "GET" && request.path.rfind("/api/", 0) != 0 && request.path.rfind("/jobs", 0) != 0 &&
      request.path != "/ws") {
    if (auto asset = dashboard_asset(request.path)) {
      HttpResponse response;
      response.content_type = std::string(asset->content_type);
      response.body = std::string(asset->body);
      return respond(std::move(response));
    }
  }
  const auto uid = token_uid(request);
  if (!uid) return respond(unauthorized());
  auto peer = new_peer("http", *uid);
  if (!peer) return respond(unauthorized_user(*uid));
  // Registries hear that this request's peer is gone once it was answered.
  Respond done = [this, peer, respond = std::move(respond)](HttpResponse response) {
    respond(std::move(response));
    peer_done(*peer);
  };
  if (request.path == "/jobs" || request.path.rfind("/jobs/", 0) == 0) return handle_jobs(request, peer, std::move(done));
  if (request.path.rfind("/api/op/", 0) == 0) return handle_op(request.path.substr(8), request, peer, std::move(done));
  if (request.path == "/ws") return done(error_response(400, "GET /ws is a WebSocket: send the upgrade headers"));
  done(error_response(404, "no such path: " + request.path));
}

void HttpRoutes::handle_jobs(const HttpRequest& request, std::shared_ptr<Peer> peer, Respond respond) {
  const std::string& path = request.path;
  const std::string& method = request.method;
  auto to_http = [respond](JobReply reply) { respond(of_job_reply(std::move(reply))); };
  std::string why;
  if (path == "/jobs" || path == "/jobs/") {
    if (method == "GET") return to_http(jobs_.list(*peer));
    if (method == "DELETE") return to_http(jobs_.remove_all(*peer));
    if (method != "POST") return respond(error_response(405, "use GET, POST or DELETE on /jobs"));
    auto body = parse_body(request.body, why);
    if (!body) return respond(error_response(400, why));
    return jobs_.create(*body, peer, to_http);
  }
  std::string rest = path.substr(6);  // after "/jobs/"
  const auto slash = rest.find('/');
  const std::string id = rest.substr(0, slash);
  const std::string tail = slash == std::string::npos ? "" : rest.substr(slash);
  if (tail == "/actions") {
    if (method != "POST") return respond(error_response(405, "use POST on /jobs/{id}/actions"));
    auto body = parse_body(request.body, why);
    if (!body) return respond(error_response(400, why));
    return jobs_.action(id, *body, peer, to_http);
  }
  if (!tail.empty()) return respond(error_response(404, "no such path: " + path));
  if (method == "GET") return to_http(jobs_.get(id, *peer));
  if (method == "DELETE") return to_http(jobs_.remove(id, *peer));
  respond(error_response(405, "use GET or DELETE on /jobs/{id}"));
}

void HttpRoutes::handle_op(const std::string& op, const HttpRequest& request, std::shared_ptr<Peer> peer,
                           Respond respond) {
  if (op.empty() || op.find('/') != std::string::npos) return respond(error_response(404, "no such operation"));
  if (is_streaming_op(op))
    return respond(json_response(
        400, json{{"ok", false},
                  {"error",
                   {{"code", "bad_request"},
                    {"message", "\"" + op + "\" streams pushes or belongs to a socket connection: send it on GET /ws "
                                            "as {\"id\": N, \"op\": \"" + op + "\", \"fields\": {...}}"}}}}));
  std::string why;
  auto body = parse_body(request.body, why);
  if (!body) return respond(json_response(400, json{{"ok", false}, {"error", {{"code", "bad_request"}, {"message", why}}}}));
  if (!body->is_object())
    return respond(json_response(
        400, json{{"ok", false}, {"error", {{"code", "bad_request"}, {"message", "the body must be a JSON object of the op's fields"}}}}));
  body->erase("id");
  body->erase("op");
  call_op(dispatcher_, std::move(peer), op, std::move(*body), [respond](json reply) {
    const bool ok = reply.value("ok", false);
    json out{{"ok", ok}};
    if (ok) {
      out["result"] = reply.value("result", json::object());
      return respond(json_response(200, out));
    }
    out["error"] = reply.value("error", json::object());
    respond(json_response(http_status_of(out["error"].value("code", "internal")), out));
  });
}

}  // namespace lpd::daemon::http
