#include "protocol/error.h"

#include <array>
#include <utility>

#include "protocol/name_table.h"

namespace lpd::protocol {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 10> kNames{{
    {ErrorCode::kBadRequest, "bad_request"},
    {ErrorCode::kUnknownOp, "unknown_op"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kPermissionDenied, "permission_denied"},
    {ErrorCode::kConflict, "conflict"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kLimitExceeded, "limit_exceeded"},
    {ErrorCode::kTimeout, "timeout"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kInternal, "internal"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) { return name_in(kNames, code, "internal"); }

std::optional<ErrorCode> error_code_from_string(std::string_view name) { return value_named(kNames, name); }

}  // namespace lpd::protocol
