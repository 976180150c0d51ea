// issue 16 (h16api): the HTTP API's bearer token.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon::http {

/// The token in `<state-dir>/http.token`: kept when that file already holds
/// a valid one (64 hex digits, a regular file of lpd's user, mode 0600, not
/// a link), so a browser's cookie survives a restart; else 256 random bits
/// from getrandom(2) written there (a new file, O_EXCL|O_NOFOLLOW, mode
/// 0600, then renamed over the old name). Delete the file for a new token.
/// Throws std::runtime_error when no token can be made or written.
std::string load_or_make_token(const std::string& state_dir);

/// Whether `offered` equals `token`, in time independent of where they
/// differ (no early exit on the first differing byte).
bool token_matches(std::string_view offered, std::string_view token);

/// The token a request offers: `Authorization: Bearer T`, else the cookie
/// `lpd_token=T`, else the query parameter `token=T` (`query` is what
/// follows '?' in the target). nullopt when none.
struct OfferedToken {
  std::string token;
  bool from_query = false;  // the reply sets the cookie
};
std::optional<OfferedToken> offered_token(std::string_view authorization, std::string_view cookie,
                                          std::string_view query);

/// The value of `name` in a query string (`a=1&b=2`), percent-decoded; nullopt if absent.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);

}  // namespace lpd::daemon::http
