// issue 16 (h16tok): one HTTP token per user: whose a token is, which file names are tokens.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "daemon/http/http_token.h"
#include "daemon/http/user_tokens.h"

using namespace lpd::daemon::http;

namespace {

std::string token_of(char c) { return std::string(64, c); }

/// A fresh directory under TMPDIR, removed afterwards.
struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lpd-tok-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("a token file's name is its user's uid in plain decimal", "[http][tokens]") {
  CHECK(uid_of_token_file("1001") == uid_t{1001});
  CHECK(uid_of_token_file("0") == uid_t{0});
  CHECK(token_file_name(1001) == "1001");
  CHECK(uid_of_token_file(token_file_name(4000000000u)) == uid_t{4000000000u});
  // Anything else is no token file: leftovers of a write, planted names, other spellings.
  for (const char* name : {"", ".", "..", "01001", "+1001", "-1", "1001.new.42", "10 01", "abc", "1001\n",
                           "99999999999", "4294967295" /* (uid_t)-1 names nobody */, "4294967296"})
    CHECK_FALSE(uid_of_token_file(name));
}

TEST_CASE("a token is its user's: every token is compared, none shared", "[http][tokens]") {
  TokenBook book;
  CHECK_FALSE(book.owner_of(token_of('a')));  // an empty book knows no one
  book.set(0, token_of('a'));
  book.set(1001, token_of('b'));
  book.set(1002, token_of('c'));
  CHECK(book.owner_of(token_of('a')) == uid_t{0});
  CHECK(book.owner_of(token_of('b')) == uid_t{1001});
  CHECK(book.owner_of(token_of('c')) == uid_t{1002});
  CHECK_FALSE(book.owner_of(token_of('d')));
  CHECK_FALSE(book.owner_of(""));
  CHECK_FALSE(book.owner_of(std::string(63, 'b')));  // a prefix of one is none
  CHECK_FALSE(book.owner_of(token_of('b') + "b"));
  // A replaced token no longer matches; the new one does.
  book.set(1001, token_of('e'));
  CHECK_FALSE(book.owner_of(token_of('b')));
  CHECK(book.owner_of(token_of('e')) == uid_t{1001});
  REQUIRE(book.find(1001));
  CHECK(*book.find(1001) == token_of('e'));
  CHECK_FALSE(book.find(7));
  CHECK(book.size() == 3);
}

TEST_CASE("lpd's tokens are 64 lowercase hex digits from getrandom", "[http][tokens]") {
  const std::string one = random_token(), two = random_token();
  CHECK(is_token_text(one));
  CHECK(one != two);
  CHECK_FALSE(is_token_text(token_of('A')));
  CHECK_FALSE(is_token_text(token_of('g')));
  CHECK_FALSE(is_token_text(std::string(63, 'a')));
}

TEST_CASE("each user's token is kept in its own file, and a link there is replaced, not followed",
          "[http][tokens]") {
  TempDir state;
  const uid_t self = ::geteuid();
  const uid_t other = self == 4242 ? 4243 : 4242;
  std::string token;
  {
    UserTokens tokens(state.path, self);
    CHECK(tokens.token_for(self, false).token == read_all(state.path + "/http.token").substr(0, 64));
    const auto issued = tokens.token_for(other, false);
    token = issued.token;
    CHECK(issued.path == state.path + "/http-tokens/" + std::to_string(other));
    CHECK_FALSE(issued.rotated);
    CHECK(tokens.uid_of(token) == other);
    struct stat st {};
    REQUIRE(::lstat(issued.path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    REQUIRE(::stat((state.path + "/http-tokens").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    CHECK(tokens.token_for(other, false).token == token);  // asked again: the same
  }
  {
    UserTokens again(state.path, self);  // a restart keeps it
    CHECK(again.uid_of(token) == other);
  }
  // A link planted at the user's token: not read, and replaced by the next write.
  const std::string path = state.path + "/http-tokens/" + std::to_string(other);
  const std::string victim = state.path + "/victim";
  std::ofstream(victim) << "victim\n";
  std::filesystem::remove(path);
  std::filesystem::create_symlink(victim, path);
  UserTokens after(state.path, self);
  CHECK_FALSE(after.uid_of(token));
  int rotations = 0;
  after.on_rotated = [&](uid_t) { ++rotations; };
  const auto fresh = after.token_for(other, false);
  CHECK(fresh.token != token);
  CHECK(rotations == 0);  // a first token replaces none
  CHECK_FALSE(std::filesystem::is_symlink(path));
  CHECK(read_all(victim) == "victim\n");
  const auto rotated = after.token_for(other, true);
  CHECK(rotated.rotated);
  CHECK(rotations == 1);
  CHECK_FALSE(after.uid_of(fresh.token));
  CHECK(after.uid_of(rotated.token) == other);
}
