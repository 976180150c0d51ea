#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lpd::protocol {

/// The closed set of error codes a reply can carry. Their string names are
/// part of the protocol: clients switch on them, so they never change.
enum class ErrorCode {
  kBadRequest,
  kUnknownOp,
  kNotFound,
  kPermissionDenied,
  kConflict,
  kTooLarge,
  kLimitExceeded,
  kTimeout,
  kUnavailable,
  kInternal,
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view name);

/// Error is thrown anywhere below a dispatcher or a client call and carries
/// exactly what the error reply says, so one catch site builds the reply.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message)
      : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace lpd::protocol
