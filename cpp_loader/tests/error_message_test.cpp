// CTest: bpnn::error_message on every case of tests/fixtures/error_messages.txt (the file that
// also checks Python's rule): error_message_test FIXTURE. Prints each failing case.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "bpnn/model.hpp"

namespace {

// (raw text, expected message) pairs: a line "=== <expected>", then the raw text up to the next
// "=== " line; "#" lines before the first case are the header.
std::vector<std::pair<std::string, std::string>> read_cases(std::ifstream& file) {
  std::vector<std::pair<std::string, std::string>> cases;
  size_t lines = 0;  // raw-text lines of the current case
  for (std::string line; std::getline(file, line);) {
    if (line.rfind("=== ", 0) == 0) {
      cases.emplace_back("", line.substr(4));
      lines = 0;
    } else if (!cases.empty()) {
      cases.back().first += (lines++ ? "\n" : "") + line;
    }
  }
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: error_message_test tests/fixtures/error_messages.txt\n");
    return 2;
  }
  std::ifstream file(argv[1]);
  if (!file) {
    std::fprintf(stderr, "error_message_test: cannot read %s\n", argv[1]);
    return 2;
  }
  const auto cases = read_cases(file);
  int failed = 0;
  for (const auto& [raw, expected] : cases) {
    const std::string got = bpnn::error_message(raw);
    if (got == expected) continue;
    ++failed;
    std::printf("FAILED case\n--- raw text:\n%s\n--- expected:\n%s\n--- got:\n%s\n\n", raw.c_str(), expected.c_str(),
                got.c_str());
  }
  std::printf("%zu cases, %d failed\n", cases.size(), failed);
  return failed == 0 && !cases.empty() ? 0 : 1;
}
