#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lpd::protocol {

/// The most bytes of a test's name lpd keeps (nodeid, and the JUnit
/// classname, name and file). A name is metadata every user sees, kept in
/// memory, in journals and in JUnit: one process must not grow lpd by
/// hundreds of MB with a few events. pytest makes longer ones by itself
/// (a parametrize value is the id), so a longer name is shortened, never
/// refused: refusing lost the test's result.
constexpr std::size_t kMaxNodeidBytes = 16 * 1024;

/// FNV-1a, 64 bits, over `bytes`: the tag that keeps two long names with
/// the same beginning apart.
std::uint64_t fnv1a_64(std::string_view bytes);

/// `name` as lpd keeps it: itself up to kMaxNodeidBytes bytes; longer, its
/// first bytes (cut at a UTF-8 character boundary) followed by
/// "[lpd: cut, N bytes, fnv1a-64 XXXXXXXXXXXXXXXX]" (N the whole length,
/// then fnv1a_64 of the whole name in 16 lower-case hex digits), at most
/// kMaxNodeidBytes bytes in all. The same name always gives the same
/// text, so a test.start and its test.finish still match; the Python shim
/// shortens the same way before sending (lpd_pytest/messages.py
/// wire_nodeid), so a record never outgrows the event ring.
std::string shortened_nodeid(std::string name);

}  // namespace lpd::protocol
