// the HTTP API's bearer token.
#include "daemon/http/http_token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "daemon/core/unique_fd.h"
#include "daemon/core/untrusted_file.h"

namespace lpd::daemon::http {
namespace {

constexpr std::size_t kTokenBytes = 32;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else if (text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool is_token_text(std::string_view text) {
  if (text.size() != kTokenBytes * 2) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> read_own_file(int dir_fd, const std::string& name, std::size_t max_bytes) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 07777) != 0600)
    return std::nullopt;
  try {
    BoundedRead read = read_bounded(fd.get(), max_bytes);
    if (read.truncated) return std::nullopt;
    return std::move(read.bytes);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> read_token_file(int dir_fd, const std::string& name) {
  auto text = read_own_file(dir_fd, name, 256);
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (!is_token_text(*text)) return std::nullopt;
  return text;
}

std::string random_token() {
  unsigned char bytes[kTokenBytes];
  std::size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("cannot make the HTTP token: getrandom: ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  return token;
}

void write_token_file(int dir_fd, const std::string& name, const std::string& token, const std::string& shown) {
  const std::string temp = name + ".new." + std::to_string(::getpid());
  ::unlinkat(dir_fd, temp.c_str(), 0);  // a leftover of an earlier try (never followed: O_EXCL below)
  UniqueFd fd(::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw std::runtime_error("cannot write " + shown + ".new: " + std::strerror(errno));
  const std::string line = token + "\n";
  const bool written = ::fchmod(fd.get(), 0600) == 0 &&
                       ::write(fd.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd.get()) == 0;
  // rename(2) replaces the name itself: a link planted there is gone, its target untouched.
  if (!written || ::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) {
    const int error = errno;
    ::unlinkat(dir_fd, temp.c_str(), 0);
    throw std::runtime_error("cannot write " + shown + ": " + std::strerror(error));
  }
}

std::string load_or_make_token(const std::string& state_dir) {
  const std::string path = state_dir + "/http.token";
  if (auto token = read_token_file(AT_FDCWD, path)) return *token;
  const std::string token = random_token();
  write_token_file(AT_FDCWD, path, token, path);
  return token;
}

bool token_matches(std::string_view offered, std::string_view token) {
  // The length is no secret (always 64); the bytes are compared in full.
  if (offered.size() != token.size() || token.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(offered[i]) ^ static_cast<unsigned char>(token[i]);
  return diff == 0;
}

std::optional<std::string> query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<OfferedToken> offered_token(std::string_view authorization, std::string_view query,
                                          bool query_allowed) {
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  const bool spaced = authorization.size() > kScheme.size() &&
                      (authorization[kScheme.size()] == ' ' || authorization[kScheme.size()] == '\t');
  if (spaced) {
    bool scheme = true;
    for (std::size_t i = 0; i < kScheme.size(); ++i)
      scheme = scheme && (authorization[i] | 0x20) == kScheme[i];  // ASCII letters: | 0x20 lowers them
    if (scheme) return OfferedToken{std::string(trim(authorization.substr(kScheme.size()))), false};
  }
  if (!query_allowed) return std::nullopt;
  if (auto token = query_parameter(query, "token")) return OfferedToken{*token, true};
  return std::nullopt;
}

}  // namespace lpd::daemon::http
