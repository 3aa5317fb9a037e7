// SHA-256 (FIPS 180-4), for checking a model file's parameters against the hash recorded at export.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bpnn {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();  // finishes the hash: 64 lowercase hex digits

 private:
  void block(const uint8_t* chunk);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes hashed
};

}  // namespace bpnn
