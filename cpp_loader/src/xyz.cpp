#include "xyz.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "bpnn/model.hpp"
#include "elements.hpp"

namespace bpnn {
namespace {

// The value of key="..." (or key=value) in an extended-XYZ comment line; empty if absent.
std::string comment_value(const std::string& comment, const std::string& key) {
  size_t at = comment.find(key + "=");
  while (at != std::string::npos && at > 0 && comment[at - 1] != ' ') at = comment.find(key + "=", at + 1);
  if (at == std::string::npos) return "";
  size_t start = at + key.size() + 1;
  if (start < comment.size() && comment[start] == '"') {
    size_t end = comment.find('"', start + 1);
    return comment.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
  }
  size_t end = comment.find(' ', start);
  return comment.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

int64_t atomic_number(const std::string& symbol, const std::string& where) {
  for (int z = 1; z <= kMaxZ; ++z)
    if (symbol == kSymbols[z]) return z;
  throw Error(where + ": unknown element symbol '" + symbol + "'");
}

}  // namespace

Structure read_xyz(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw Error("structure file not found: " + path);
  std::string line;
  long n = -1;
  if (!std::getline(file, line) || !(std::istringstream(line) >> n) || n < 0) {
    throw Error(path + ":1: expected the number of atoms");
  }
  std::string comment;
  std::getline(file, comment);
  Structure s;
  std::string lattice = comment_value(comment, "Lattice");
  if (!lattice.empty()) {
    std::istringstream values(lattice);
    for (double& x : s.cell)
      if (!(values >> x)) throw Error(path + ":2: Lattice needs 9 numbers");
    s.pbc = {true, true, true};
  }
  std::string pbc = comment_value(comment, "pbc");
  if (!pbc.empty()) {
    std::istringstream flags(pbc);
    for (int c = 0; c < 3; ++c) {
      std::string flag;
      if (!(flags >> flag)) throw Error(path + ":2: pbc needs 3 flags");
      s.pbc[c] = (flag == "T" || flag == "True" || flag == "true" || flag == "1");
    }
  }
  for (long i = 0; i < n; ++i) {
    const std::string where = path + ":" + std::to_string(i + 3);
    if (!std::getline(file, line)) throw Error(where + ": file ends before atom " + std::to_string(i + 1) + " of " + std::to_string(n));
    std::istringstream words(line);
    std::string symbol, text[3];
    if (!(words >> symbol >> text[0] >> text[1] >> text[2])) throw Error(where + ": expected 'symbol x y z'");
    s.numbers.push_back(atomic_number(symbol, where));
    for (const std::string& value : text) {
      char* end = nullptr;
      const double coordinate = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0') throw Error(where + ": '" + value + "' is not a number (expected 'symbol x y z')");
      if (!std::isfinite(coordinate)) throw Error(where + ": position of atom " + std::to_string(i + 1) + " is NaN or inf");
      s.positions.push_back(coordinate);
    }
  }
  return s;
}

}  // namespace bpnn
