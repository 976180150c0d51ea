#include "daemon/http/http_token_ops.h"

#include "daemon/http/http_server.h"
#include "daemon/http/local_call.h"
#include "daemon/http/user_tokens.h"

namespace lpd::daemon {

using protocol::Error;
using protocol::ErrorCode;

json handle_http_token(http::HttpServer* server, const std::string& address, Call& call) {
  http::UserTokens* tokens = server ? server->tokens() : nullptr;
  if (!tokens)
    throw Error(ErrorCode::kUnavailable,
                "this lpd serves no HTTP API or dashboard: start it with `lpd start --http 127.0.0.1:PORT`");
  // Tokens are given on the Unix socket only: a token must not renew
  // itself over HTTP past the socket's word on who may connect.
  if (call.peer.session_id >= http::kFirstSession)
    throw Error(ErrorCode::kPermissionDenied, "ask for an HTTP token on lpd's Unix socket (lpctl dashboard)");
  if (call.peer.uid == static_cast<uid_t>(-1))
    throw Error(ErrorCode::kPermissionDenied, "the caller's credentials are unknown");
  // A token lpd could not act on (no passwd entry: no groups, no home) is none.
  if (!http::is_known_user(call.peer.uid))
    throw Error(ErrorCode::kPermissionDenied, "uid " + std::to_string(call.peer.uid) +
                                                  " is not in the user database: lpd cannot act as it over HTTP");
  const bool rotate = call.fields.optional_boolean("rotate").value_or(false);
  http::UserTokens::Issued issued;
  try {
    issued = tokens->token_for(call.peer.uid, rotate);
  } catch (const std::runtime_error& e) {
    throw Error(ErrorCode::kInternal, std::string("cannot give uid ") + std::to_string(call.peer.uid) +
                                          " an HTTP token: " + e.what());
  }
  return {{"uid", call.peer.uid},
          {"token", issued.token},
          {"address", address},
          // The token in the fragment, which a browser never sends (no server log, no Referer).
          {"url", "http://" + address + "/#token=" + issued.token},
          {"token_file", issued.path},
          {"own_user", call.peer.uid == tokens->owner()},
          {"rotated", issued.rotated}};
}

}  // namespace lpd::daemon
