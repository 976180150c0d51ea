// issue 16 (h16tok): one HTTP token per user.
#include "daemon/http/user_tokens.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "daemon/http/http_token.h"

namespace lpd::daemon::http {

std::string token_file_name(uid_t uid) { return std::to_string(uid); }

std::optional<uid_t> uid_of_token_file(std::string_view name) {
  if (name.empty() || name.size() > 10) return std::nullopt;
  if (name.size() > 1 && name.front() == '0') return std::nullopt;
  for (char c : name)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long long value = 0;
  const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), value);
  if (error != std::errc() || end != name.data() + name.size()) return std::nullopt;
  if (value >= static_cast<unsigned long long>(std::numeric_limits<uid_t>::max())) return std::nullopt;
  return static_cast<uid_t>(value);
}

const std::string* TokenBook::find(uid_t uid) const {
  const auto it = tokens_.find(uid);
  return it == tokens_.end() ? nullptr : &it->second;
}

std::optional<uid_t> TokenBook::owner_of(std::string_view offered) const {
  std::optional<uid_t> found;
  for (const auto& [uid, token] : tokens_)
    if (token_matches(offered, token) && !found) found = uid;
  return found;
}

UserTokens::UserTokens(std::string state_dir, uid_t owner)
    : state_dir_(std::move(state_dir)), directory_(state_dir_ + "/http-tokens"), owner_(owner) {
  book_.set(owner_, load_or_make_token(state_dir_));
  try {
    load_user_tokens();
  } catch (const std::exception& e) {
    // Users ask again (lpctl dashboard) and get a new token; lpd's own works.
    spdlog::warn("http: per-user tokens not loaded: {}", e.what());
  }
}

UniqueFd UserTokens::open_directory(bool create) const {
  UniqueFd dir(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir && errno == ENOENT && create) {
    if (::mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot make " + directory_ + ": " + std::strerror(errno));
    dir = UniqueFd(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!dir) {
    if (errno == ENOENT) return dir;
    // ELOOP / ENOTDIR: a link or a file was put there; lpd does not follow or replace a directory.
    throw std::runtime_error(directory_ + " is not a directory lpd can use (" + std::strerror(errno) +
                             "); remove it and ask again");
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0 || st.st_uid != ::geteuid())
    throw std::runtime_error(directory_ + " is not owned by lpd's user; remove it and ask again");
  // Only lpd's user may list or add names in it.
  if ((st.st_mode & 077) != 0 && ::fchmod(dir.get(), 0700) != 0)
    throw std::runtime_error("cannot make " + directory_ + " private: " + std::strerror(errno));
  return dir;
}

void UserTokens::load_user_tokens() {
  UniqueFd dir = open_directory(/*create=*/false);
  if (!dir) return;
  UniqueFd listing(::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0));
  if (!listing) throw std::runtime_error("cannot list " + directory_ + ": " + std::strerror(errno));
  DIR* stream = ::fdopendir(listing.get());
  if (!stream) throw std::runtime_error("cannot list " + directory_ + ": " + std::strerror(errno));
  listing.release();  // closedir closes it
  while (const dirent* entry = ::readdir(stream)) {
    const std::string name = entry->d_name;
    const auto uid = uid_of_token_file(name);
    if (!uid || *uid == owner_) continue;  // lpd's own token is http.token
    if (auto token = read_token_file(dir.get(), name)) {
      book_.set(*uid, std::move(*token));
    } else {
      spdlog::warn("http: {}/{} is not a token file of lpd's (a link, another owner or mode, or not one token); "
                   "uid {} gets a new token when it asks",
                   directory_, name, *uid);
    }
  }
  ::closedir(stream);
}

UserTokens::Issued UserTokens::token_for(uid_t uid, bool rotate) {
  const bool own = uid == owner_;
  const std::string path = own ? state_dir_ + "/http.token" : directory_ + "/" + token_file_name(uid);
  const std::string* current = book_.find(uid);
  if (current && !rotate) return Issued{*current, path, false};
  std::string token = random_token();
  if (own) {
    write_token_file(AT_FDCWD, path, token, path);
  } else {
    UniqueFd dir = open_directory(/*create=*/true);
    write_token_file(dir.get(), token_file_name(uid), token, path);
  }
  const bool replaced = current != nullptr;
  book_.set(uid, token);
  if (replaced && on_rotated) on_rotated(uid);
  return Issued{std::move(token), path, replaced};
}

}  // namespace lpd::daemon::http
