#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/core/event_bus.h"

namespace lpd::daemon {

/// The text both journal lines of one event share, formatted once: its
/// seq, time, type and run id as JSON (every event goes to both journals,
/// two per test of a run). Views into its own buffer, or into `buffer`
/// (the caller's, reused from event to event: no allocation per event; it
/// must outlive the parts and not change meanwhile): neither copied nor
/// moved.
class EventLineParts {
 public:
  explicit EventLineParts(const Event& e) : EventLineParts(e, text_) {}
  EventLineParts(const Event& e, std::string& buffer);
  EventLineParts(const EventLineParts&) = delete;
  EventLineParts& operator=(const EventLineParts&) = delete;

  std::string_view seq;     // 17
  std::string_view time;    // 1764555555.123456
  std::string_view type;    // "test.finish"
  std::string_view run_id;  // "20261201-014558-110d3f"

 private:
  std::string text_;
};

/// One event as a line of lpd's global events journal (events/*.jsonl):
/// {"seq":N,"time":T,"event":TYPE,"run_id":R,"owner":U,"data":{...}}\n.
/// `seq` comes first so a reader finds an event's place (seq_of_line)
/// without parsing the whole line. Invalid UTF-8 in the data is replaced,
/// as the per-run journals do.
std::string encode_event_line(const Event& e);
/// encode_event_line() appended to `out`; `parts` are `e`'s.
void append_event_line(std::string& out, const Event& e, const EventLineParts& parts);
void append_event_line(std::string& out, const Event& e);

/// One event as a line of its run's journal (runs/<run_id>/events.jsonl,
/// pytest-live-pause's layout): the data's own fields plus "event", "seq",
/// "time" and "run_id", the object a subscriber receives as `data` with the
/// type beside it; ends with a newline. Spliced from Event::data_text(), so
/// the data is encoded once for both journals; an event whose data is not an
/// object or already has one of those four keys is encoded the long way with
/// the same result (Event::with_envelope's rules).
std::string encode_run_journal_line(const Event& e);
/// encode_run_journal_line() appended to `out`; `parts` are `e`'s.
void append_run_journal_line(std::string& out, const Event& e, const EventLineParts& parts);
void append_run_journal_line(std::string& out, const Event& e);

/// The event of one journal line (without its newline); nullopt when the
/// line is not a complete record lpd wrote (a torn tail, a damaged byte).
std::optional<Event> decode_event_line(std::string_view line);

/// The event of one line of a run's journal (append_run_journal_line's
/// shape: the data's fields with "event", "seq", "time" and "run_id" among
/// them), those four taken out of the data again. The journal does not say
/// who the event was for: `owner` is given (the run's). nullopt for a line
/// that is not an event lpd wrote (a ring mark, a torn or damaged line).
std::optional<Event> decode_run_journal_line(std::string_view line, uid_t owner);

/// The seq at the start of a journal line, read from its `{"seq":N` prefix
/// only; nullopt when the line does not start that way.
std::optional<std::uint64_t> seq_of_line(std::string_view line);

/// The type and run_id of a global journal line as lpd writes it
/// ({"seq":N,"time":T,"event":"TYPE","run_id":"RUN",...}), read off its
/// beginning without parsing it: a filtered scan skips most lines so.
/// nullopt for a line not in that shape (or with an escape in either
/// string): then only decode_event_line can tell.
struct LineHead {
  std::string_view type;
  std::string_view run_id;
  std::string_view time;  // the time's JSON number as written (seconds)
};
std::optional<LineHead> head_of_event_line(std::string_view line);

}  // namespace lpd::daemon
