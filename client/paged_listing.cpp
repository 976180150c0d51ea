#include "client/paged_listing.h"

#include <cstdio>
#include <iostream>

#include "client/cli.h"
#include "client/table_width.h"

namespace lpd::client {

using nlohmann::json;

int print_paged_listing(Connection& connection, json fields, const PagedListing& listing, bool as_json) {
  std::size_t printed = 0;
  int run_width = listing.run_width_at_least;  // never shrinks, so the columns of later pages stay put
  for (;;) {
    json page;
    try {
      page = connection.request(listing.op, fields);
    } catch (...) {
      // A later page failed: what was printed is not the whole list. With
      // --json the array is left unclosed on purpose, so that no reader
      // takes it for a complete document; the error itself follows.
      if (printed > 0) {
        std::cout << std::endl;
        std::fprintf(stderr, "lpctl: the list above stops after %zu item(s): its next page could not be read\n",
                     printed);
      }
      throw;
    }
    const json rows = page.value(listing.items, json::array());
    run_width = column_width(rows, "run_id", run_width);
    for (const auto& row : rows) {
      if (as_json) {
        std::cout << (printed == 0 ? "[" : ",") << row.dump(-1, ' ', false, json::error_handler_t::replace);
      } else {
        if (printed == 0) listing.print_header(run_width);
        listing.print_row(row, run_width);
      }
      ++printed;
    }
    std::cout.flush();
    std::fflush(stdout);
    const auto next = page.find("next");
    if (next == page.end() || !listing.is_cursor(*next)) break;
    fields["after"] = *next;
  }
  if (as_json)
    std::cout << (printed == 0 ? "[" : "") << "]" << std::endl;
  else if (printed == 0)
    std::cout << listing.none << std::endl;
  return kExitOk;
}

}  // namespace lpd::client
