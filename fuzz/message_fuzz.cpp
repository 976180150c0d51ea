// Fuzz target: envelope parsing (protocol::parse_message) and typed field
// access (protocol::Fields) on one hostile line, as the daemon's dispatcher
// and lpctl's connection meet it. Contracts checked:
//   - parse_message throws protocol::Error and nothing else;
//   - a request's op() and id() never throw;
//   - every Fields getter, on every key the message has and on absent ones,
//     throws protocol::Error (bad_request) and nothing else;
//   - result_or_throw on a reply throws protocol::Error or returns;
//   - a reply lpd encodes for any id decodes again as a reply with that id
//     (invalid UTF-8 is replaced, never thrown);
//   - parse_flat_message (the event ring's per-test records) never throws,
//     and what it accepts parse_message reads as a notification with the
//     same op and the same value for every member;
//   - parse_flat_object (flat records lpd reads back from its journals)
//     never throws, and what it accepts the JSON parser reads as an object
//     with the same members (the last of a name given twice);
//   - parse_test_record (the shim's two per-test records read off the line)
//     takes only what parse_flat_message also takes, with the same op,
//     nodeid, outcome "passed", phase "call" and duration.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error.h"
#include "protocol/fields.h"
#include "protocol/flat_message.h"
#include "protocol/message.h"
#include "protocol/test_record.h"

namespace {

namespace protocol = lpd::protocol;

[[noreturn]] void violated(const char* what) {
  __builtin_printf("message invariant violated: %s\n", what);
  std::abort();
}

/// Calls every getter on `name`; protocol::Error is the only allowed failure.
void read_every_way(const protocol::Fields& fields, std::string_view name) {
  auto attempt = [](auto&& get) {
    try {
      get();
    } catch (const protocol::Error& e) {
      if (e.code() != protocol::ErrorCode::kBadRequest) violated("a getter failed with a code other than bad_request");
    }
  };
  attempt([&] { (void)fields.string(name); });
  attempt([&] { (void)fields.optional_string(name); });
  attempt([&] { (void)fields.integer(name); });
  attempt([&] { (void)fields.optional_integer(name); });
  attempt([&] {
    if (auto s = fields.optional_seconds(name); s && !(*s >= 0 && *s <= 365.0 * 24 * 3600))
      violated("optional_seconds returned a value out of its range");
  });
  attempt([&] { (void)fields.optional_boolean(name); });
  attempt([&] { (void)fields.string_list(name); });
  attempt([&] { (void)fields.string_map(name); });
  (void)fields.has(name);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto flat = protocol::parse_flat_message(line);
  if (const auto record = protocol::parse_test_record(line)) {
    if (!flat || flat->op != record->op()) violated("a test record the flat decoder reads otherwise");
    const auto* nodeid = flat->find("nodeid");
    if (!nodeid || nodeid->kind != protocol::FlatValue::Kind::kString || nodeid->text != record->nodeid)
      violated("a test record's nodeid differs");
    if (record->kind == protocol::TestRecord::Kind::kStart) {
      if (flat->fields.size() != 1) violated("a test.start record with more than its nodeid");
    } else {
      const auto* outcome = flat->find("outcome");
      const auto* phase = flat->find("phase");
      const auto* duration = flat->find("duration");
      const auto* message = flat->find("message");
      if (flat->fields.size() != 5 || !outcome || outcome->text != "passed" || !phase || phase->text != "call" ||
          !duration || !duration->is_number() || duration->as_double() != record->duration || !message ||
          message->kind != protocol::FlatValue::Kind::kString || !message->text.empty())
        violated("a passed test.finish record differs from its flat reading");
    }
  }
  if (flat) {
    protocol::Message tree;
    try {
      tree = protocol::parse_message(line);
    } catch (const protocol::Error&) {
      violated("a flat message the envelope parser refuses");
    }
    if (tree.kind != protocol::Kind::kNotification || tree.op() != flat->op) violated("a flat message's op differs");
    for (const auto& [key, value] : flat->fields) {
      const auto* mine = flat->find(key);
      if (!mine || !tree.body.contains(key) || tree.body[key] != mine->to_json()) violated("a flat member differs from the tree's");
    }
    const protocol::Fields flat_fields(*flat);
    for (const auto& [key, value] : flat->fields) read_every_way(flat_fields, key);
  }
  if (const auto members = protocol::parse_flat_object(line)) {
    const auto tree = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (tree.is_discarded() || !tree.is_object()) violated("a flat object the JSON parser refuses");
    nlohmann::json mine = nlohmann::json::object();
    for (const auto& [key, value] : *members) mine[key] = value.to_json();
    if (mine != tree) violated("a flat object's members differ from the tree's");
  }
  protocol::Message message;
  try {
    message = protocol::parse_message(line);
  } catch (const protocol::Error&) {
    return 0;  // answered with bad_request: fine
  }

  const protocol::Fields fields(message.body);
  std::vector<std::string> names = {"op", "id", "name", "argv", "env", "timeout", "run_id", "absent"};
  for (const auto& [key, value] : message.body.items()) names.push_back(key);
  for (const auto& name : names) read_every_way(fields, name);

  switch (message.kind) {
    case protocol::Kind::kRequest: {
      const auto& op = message.op();
      const auto& id = message.id();
      const std::string reply = protocol::encode_reply_ok(id, message.body);
      protocol::Message back = protocol::parse_message(reply.substr(0, reply.size() - 1));
      if (back.kind != protocol::Kind::kReply || back.body.at("id") != id) violated("an encoded reply does not decode");
      const std::string error = protocol::encode_reply_error(id, protocol::ErrorCode::kUnknownOp, op);
      back = protocol::parse_message(error.substr(0, error.size() - 1));
      if (back.kind != protocol::Kind::kReply) violated("an encoded error reply does not decode");
      break;
    }
    case protocol::Kind::kNotification:
      (void)message.op();
      break;
    case protocol::Kind::kReply:
      try {
        (void)protocol::result_or_throw(message.body);
      } catch (const protocol::Error&) {
        // a failed reply: what lpctl prints
      }
      break;
    case protocol::Kind::kPush:
      break;
  }
  return 0;
}
