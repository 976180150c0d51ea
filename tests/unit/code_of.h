#pragma once

#include <functional>

#include <catch2/catch.hpp>

#include "protocol/error.h"

/// The protocol error code `f` throws (protocol::Error); fails the test
/// case when it throws nothing. For tests of the rules that refuse a
/// request: what matters is which code the peer gets.
inline lpd::protocol::ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lpd::protocol::Error& e) {
    return e.code();
  }
  FAIL("expected a protocol error, none was thrown");
  return lpd::protocol::ErrorCode::kInternal;
}
