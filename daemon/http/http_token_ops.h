// The http.token operation (lpctl dashboard).
#pragma once

#include <string>

#include "daemon/core/operation.h"

namespace lpd::daemon {

namespace http {
class HttpServer;
}

/// http.token: the caller's own HTTP token (the uid the kernel named for
/// the connection, never a claim), made on its first request and kept;
/// with rotate=true a new one replaces it (the old one is refused from
/// then on, and WebSockets that showed it are closed). Replies token, uid,
/// address, url (http://ADDR/#token=TOKEN, to paste into a browser),
/// token_file (where lpd keeps it; readable by lpd's user only) and
/// rotated. Throws unavailable when lpd serves no HTTP (no --http),
/// internal when the token cannot be written.
/// `server`: lpd's HTTP server, null without --http; `address`: where it listens.
json handle_http_token(http::HttpServer* server, const std::string& address, Call& call);

}  // namespace lpd::daemon
