// The archive's JSON records (metadata.json, provenance.json): flat lookups, enough for the
// string values the loader needs.
#pragma once

#include <string>

namespace bpnn {
namespace detail {

// The string value of "key" in a JSON record ("" if absent or not a string).
inline std::string json_string(const std::string& json, const std::string& key) {
  const std::string quoted = "\"" + key + "\"";
  size_t at = json.find(quoted);
  if (at == std::string::npos) return "";
  at = json.find_first_not_of(" \t\r\n", at + quoted.size());
  if (at == std::string::npos || json[at] != ':') return "";
  const size_t open = json.find_first_not_of(" \t\r\n", at + 1);
  if (open == std::string::npos || json[open] != '"') return "";
  const size_t close = json.find('"', open + 1);
  if (close == std::string::npos) return "";
  return json.substr(open + 1, close - open - 1);
}

}  // namespace detail
}  // namespace bpnn
