#pragma once

#include <string>
#include <string_view>

namespace lpd::client::report_patch {

/// Text as it may stand in an HTML attribute or element: & < > " ' become
/// &amp; &lt; &gt; &#34; &#39;, as Jinja/markupsafe (pytest-html's
/// templates) escape them. Plain rule.
std::string html_escape(std::string_view text);

/// The text an HTML attribute value stands for: named references amp, lt,
/// gt, quot, apos and numeric ones (&#34; &#x27;) are decoded; anything else
/// (an unknown name, a malformed reference) is kept as written, as browsers
/// do. Plain rule.
std::string html_unescape(std::string_view text);

}  // namespace lpd::client::report_patch
