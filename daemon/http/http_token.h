// the HTTP API's bearer token.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lpd::daemon::http {

/// The token in `<state-dir>/http.token`: kept when that file already holds
/// a valid one (64 hex digits, a regular file of lpd's user, mode 0600, not
/// a link), so a browser's stored token survives a restart; else 256 random bits
/// from getrandom(2) written there (a new file, O_EXCL|O_NOFOLLOW, mode
/// 0600, then renamed over the old name). Delete the file for a new token.
/// Throws std::runtime_error when no token can be made or written.
std::string load_or_make_token(const std::string& state_dir);

/// the file rules load_or_make_token applies, for any token file.
/// Whether `text` is a token as lpd makes them: 64 lowercase hex digits.
bool is_token_text(std::string_view text);
/// 256 random bits from getrandom(2) as 64 lowercase hex digits. Throws
/// std::runtime_error when the kernel gives none.
std::string random_token();
/// The text of `name` under `dir_fd` (AT_FDCWD: a path) when it is a file
/// lpd wrote: a regular file of lpd's user, mode 0600, not a link
/// (O_NOFOLLOW), not a FIFO that could hold lpd (O_NONBLOCK), at most
/// `max_bytes`. nullopt else.
std::optional<std::string> read_own_file(int dir_fd, const std::string& name, std::size_t max_bytes);
/// The token in `name` under the directory `dir_fd` (AT_FDCWD: `name` is a
/// path): nullopt unless it is a regular file of lpd's user, mode 0600, not a
/// link (O_NOFOLLOW), holding one token (a trailing newline allowed).
std::optional<std::string> read_token_file(int dir_fd, const std::string& name);
/// Writes `token` to `name` under `dir_fd`: a new file (O_EXCL|O_NOFOLLOW,
/// mode 0600, fsynced) renamed over the name, so a link planted there is
/// replaced, never written through. Throws std::runtime_error naming
/// `shown` (the path for messages) when it cannot.
void write_token_file(int dir_fd, const std::string& name, const std::string& token, const std::string& shown);

/// Whether `offered` equals `token`, in time independent of where they
/// differ (no early exit on the first differing byte).
bool token_matches(std::string_view offered, std::string_view token);

/// The token a request offers: `Authorization: Bearer T` (the scheme's
/// name in any case, RFC 7235 section 2.1), else, when `query_allowed`,
/// the query parameter `token=T` (`query` is what follows '?' in the
/// target). A browser cannot set headers on a WebSocket, so lpd allows the
/// query on GET /ws only. nullopt when none. Never a cookie: cookies are
/// not scoped to a port, so any server on the same host would receive it
/// (protocol/README.md "HTTP and WebSocket").
struct OfferedToken {
  std::string token;
  bool from_query = false;
};
std::optional<OfferedToken> offered_token(std::string_view authorization, std::string_view query,
                                          bool query_allowed);

/// The value of `name` in a query string (`a=1&b=2`), percent-decoded; nullopt if absent.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);

}  // namespace lpd::daemon::http
