// `lpd start --http ADDR:PORT`, parsed and checked.
#include "daemon/http/http_listen.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdexcept>

namespace lpd::daemon::http {

ListenAddress parse_listen_address(std::string_view text, bool allow_remote) {
  const std::string shown(text);
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    throw std::invalid_argument("--http " + shown + ": expected ADDRESS:PORT, e.g. 127.0.0.1:8080");
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  unsigned long port = 0;
  if (port_text.empty() || port_text.size() > 5) throw std::invalid_argument("--http " + shown + ": bad port");
  for (char c : port_text) {
    if (c < '0' || c > '9') throw std::invalid_argument("--http " + shown + ": bad port");
    port = port * 10 + static_cast<unsigned long>(c - '0');
  }
  if (port > 65535) throw std::invalid_argument("--http " + shown + ": port above 65535");
  ListenAddress address;
  address.host = host;
  address.port = static_cast<std::uint16_t>(port);
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    address.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    address.loopback = IN6_IS_ADDR_LOOPBACK(&v6) ||
                       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  } else {
    throw std::invalid_argument("--http " + shown + ": \"" + host +
                                "\" is not a numeric IP address (or localhost); lpd resolves no names");
  }
  if (!address.loopback && !allow_remote)
    throw std::invalid_argument("--http " + shown + ": " + host +
                                " is not a loopback address; anyone who can reach it could try the token: add "
                                "--http-allow-remote to serve it anyway (over plain HTTP: use a TLS proxy)");
  return address;
}

}  // namespace lpd::daemon::http
