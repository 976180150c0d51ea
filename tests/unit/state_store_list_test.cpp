// StateStore::list and list_dirs: what lpd's start-up takes for runs,
// pauses and jobs (runs/<id>/ and their files) in a state directory any
// file of which a user may have planted.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "daemon/core/state_store.h"
#include "tests/unit/temp_dir.h"

using lpd::daemon::StateStore;

namespace {

std::vector<std::string> sorted_names(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("list and list_dirs take only the entries themselves: links, FIFOs and sockets are neither",
          "[state_store]") {
  TempDir dir("lpd-list");
  const std::string runs = dir.path + "/runs";
  REQUIRE(::mkdir(runs.c_str(), 0700) == 0);
  REQUIRE(::mkdir((runs + "/run-a").c_str(), 0700) == 0);
  REQUIRE(::mkdir((runs + "/run-b").c_str(), 0700) == 0);
  std::ofstream(runs + "/run.json") << "{}\n";
  std::ofstream(runs + "/job.json") << "{}\n";
  // Planted: links to a directory and to a file, a dangling link, a FIFO.
  REQUIRE(::symlink("run-a", (runs + "/run-link").c_str()) == 0);
  REQUIRE(::symlink("/etc", (runs + "/etc-link").c_str()) == 0);
  REQUIRE(::symlink("run.json", (runs + "/file-link").c_str()) == 0);
  REQUIRE(::symlink("nowhere", (runs + "/dangling").c_str()) == 0);
  REQUIRE(::mkfifo((runs + "/fifo").c_str(), 0600) == 0);

  const StateStore store{dir.path};
  CHECK(sorted_names(store.list_dirs("runs")) == std::vector<std::string>{"run-a", "run-b"});
  CHECK(sorted_names(store.list("runs")) == std::vector<std::string>{"job.json", "run.json"});
  CHECK(store.list_dirs("runs/run-a").empty());
  CHECK(store.list("absent").empty());
  CHECK(store.list_dirs("absent").empty());
}
