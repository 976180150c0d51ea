#pragma once

#include <string>
#include <string_view>

namespace lpd::daemon {

/// pytest's bin_xml_escape (_pytest/junitxml.py, pytest 7.2): every code
/// point outside the set pytest keeps is shown as "#xNN" or "#xNNNN" (no
/// ampersand: a visible mark for a reader, not an XML reference). pytest's
/// kept set is, because of a "\u10000" typo in its pattern, tab, newline,
/// carriage return, U+0020..U+D7FF and U+E000..U+FFFD: characters beyond
/// U+FFFF (emoji) are shown as "#x1F600" too, and lpd does the same.
/// `text` is UTF-8; a byte that is not part of valid UTF-8 (a native
/// traceback may hold any bytes) is shown as "#xNN" of that byte.
/// Returns valid UTF-8 holding only characters XML 1.0 allows.
std::string visible_xml_chars(std::string_view text);

/// Text escaped for an XML attribute value in double quotes, the way
/// Python's xml.etree.ElementTree writes it (& < > " and newline, carriage
/// return and tab as character references), after visible_xml_chars: an
/// attribute with a newline keeps it ("&#10;") instead of having it turned
/// into a space by the reader.
std::string xml_attribute(std::string_view text);

/// Text escaped for XML character data as ElementTree writes it (& < >),
/// after visible_xml_chars.
std::string xml_text(std::string_view text);

}  // namespace lpd::daemon
