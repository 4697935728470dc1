#include "protocol/broker_url.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cctype>

#include "common/text_escape.h"

namespace picoflow {
namespace {

Error Bad(std::string_view url, std::string_view why) {
  return Err(ErrorCode::kInvalid, "mqtt url '" + EscapeControls(url) + "': " + std::string(why));
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A host name (RFC 1123 letters, digits, '-', '.') or an IPv4 address.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsIpv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

Result<int> ParsePort(std::string_view url, std::string_view text) {
  if (text.empty() || text.size() > 5) return Bad(url, "the port must be a number 1-65535");
  int port = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return Bad(url, "the port must be a number 1-65535");
    }
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return Bad(url, "the port must be a number 1-65535");
  return port;
}

Result<BrokerUrl> ParseUnix(std::string_view url, std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return Bad(url, "a unix socket is written unix:///absolute/path");
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Bad(url, "the socket path is longer than a unix socket address holds");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return Bad(url, "a unix socket path has no query or fragment");
  }
  BrokerUrl out;
  out.scheme = BrokerScheme::kUnix;
  out.host = std::string(path);
  return out;
}

// `authority` is what follows "scheme://": host[:port], with an optional "/".
Result<BrokerUrl> ParseNetwork(std::string_view url, BrokerScheme scheme,
                               std::string_view authority) {
  if (!authority.empty() && authority.back() == '/') authority.remove_suffix(1);
  if (authority.find_first_of("/?#") != std::string_view::npos) {
    return Bad(url, "a broker url has no path, query or fragment");
  }
  if (authority.find('@') != std::string_view::npos) {
    return Bad(url, "credentials are not part of the url: set the username and password file");
  }
  BrokerUrl out;
  out.scheme = scheme;
  out.port = scheme == BrokerScheme::kMqtts ? 8883 : 1883;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return Bad(url, "an IPv6 address lacks its ']'");
    out.host = std::string(authority.substr(1, close - 1));
    if (!IsIpv6(out.host)) return Bad(url, "'" + out.host + "' is not an IPv6 address");
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Bad(url, "expected ':PORT' after the IPv6 address");
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return Bad(url, "an IPv6 address is written in brackets: mqtt://[::1]:1883");
    }
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    if (out.host.empty()) return Bad(url, "the url names no host");
    if (!IsHostName(out.host)) return Bad(url, "'" + out.host + "' is not a host name");
  }
  if (has_port) {
    auto port = ParsePort(url, port_text);
    if (!port) return port.error();
    out.port = *port;
  }
  return out;
}

}  // namespace

Result<BrokerUrl> ParseBrokerUrl(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Bad(url, "expected mqtt://HOST[:PORT], mqtts://HOST[:PORT] or unix:///PATH");
  }
  const std::string scheme = Lower(url.substr(0, sep));
  const std::string_view rest = url.substr(sep + 3);
  if (scheme == "unix") return ParseUnix(url, rest);
  if (scheme == "mqtt") return ParseNetwork(url, BrokerScheme::kMqtt, rest);
  if (scheme == "mqtts") return ParseNetwork(url, BrokerScheme::kMqtts, rest);
  return Bad(url, "unknown scheme '" + scheme + "' (mqtt, mqtts or unix)");
}

}  // namespace picoflow
