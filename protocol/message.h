#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "protocol/error.h"

namespace lpd::protocol {

using json = nlohmann::json;

/// The four envelopes that travel on a connection. Every message is one JSON
/// object on one line; which envelope it is follows from its keys alone:
///   request       {"id": <int|string>, "op": "...", ...fields}
///   notification  {"op": "...", ...fields}                (no id, no reply)
///   reply         {"id": ..., "ok": true, "result": {...}}
///                 {"id": ..., "ok": false, "error": {"code": "...", "message": "..."}}
///   push          {"event": "...", "data": {...}}         (server to client)
enum class Kind { kRequest, kNotification, kReply, kPush };

/// Message is one decoded line. `body` keeps the whole object so handlers
/// read their fields straight from it.
struct Message {
  Kind kind;
  json body;

  const std::string& op() const { return body.at("op").get_ref<const std::string&>(); }
  const json& id() const { return body.at("id"); }
};

/// Decodes one line. Throws Error(kBadRequest) with a message that says what
/// is wrong: not JSON, not an object, a bad id, a missing or non-string op.
Message parse_message(std::string_view line);

/// Encoders return one line including its trailing newline.
std::string encode_request(const json& id, std::string_view op, json fields = json::object());
std::string encode_notification(std::string_view op, json fields = json::object());
std::string encode_reply_ok(const json& id, json result);
std::string encode_reply_error(const json& id, ErrorCode code, std::string_view message);
std::string encode_push(std::string_view event, json data);

/// `line` (one encoded line, newline included) when it is within
/// kMaxLineBytes; else what to send instead, since no peer can read it: a
/// reply becomes a too_large error reply to the same id, anything else (a
/// push) a too_large error with a null id naming it. Every sender of lpd's
/// lines passes them through this: a list or push that grew past the limit
/// is a bug in lpd, and the peer should hear what it lost, not fail to
/// frame the stream.
std::string within_line_limit(std::string line);

/// Throws the Error a failed reply carries; returns the result of a good one.
/// Only ever throws Error: a reply with missing or mistyped members is a
/// failure with code internal (and "request failed" when it has no message).
json result_or_throw(const json& reply);

}  // namespace lpd::protocol
