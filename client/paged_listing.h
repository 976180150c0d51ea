#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "client/connection.h"

namespace lpd::client {

/// A listing lpd answers a page at a time (run.list, crash.list), each page
/// well under the protocol's line limit: what to ask and how to show it.
struct PagedListing {
  std::string op;            // the operation: "run.list"
  std::string items;         // the page's array of rows: "runs"
  int run_width_at_least;    // the RUN column's usual width; it grows with a page of longer (named) run ids
  /// Whether a page's "next" is a cursor this operation takes back as
  /// "after" (run.list's is an object, crash.list's a number).
  std::function<bool(const nlohmann::json& next)> is_cursor;
  std::function<void(int run_width)> print_header;
  std::function<void(const nlohmann::json& row, int run_width)> print_row;
  std::string none;  // the line printed when there is no row
};

/// Asks for `listing.op` with `fields`, then again with "after" set to each
/// page's "next", until a page has no cursor (an lpd from before paging sends
/// none: its one reply was everything). Each page is printed as it arrives:
/// with `as_json` the rows form one JSON array written piece by piece, else a
/// table (header before the first row, `listing.none` for no row). Throws
/// what Connection::request throws (a later page's failure after a line on
/// stderr saying the list is cut short; a JSON array is then left
/// unclosed, never passed off as whole); returns kExitOk.
int print_paged_listing(Connection& connection, nlohmann::json fields, const PagedListing& listing, bool as_json);

}  // namespace lpd::client
