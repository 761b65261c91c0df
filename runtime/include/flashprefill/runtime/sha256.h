//===- flashprefill/runtime/sha256.h - SHA-256 digests ----------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// A small self-contained SHA-256 (FIPS 180-4) for kernel cache keys and entry
// checksums; the runtime takes no crypto dependency. Not constant-time: it
// hashes public data only.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_SHA256_H
#define FLASHPREFILL_RUNTIME_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fp {
namespace rt {

/// A 32-byte SHA-256 digest.
using Sha256Digest = std::array<uint8_t, 32>;

/// Incremental SHA-256: update() any number of times, then finish() once.
class Sha256 {
public:
  Sha256();
  /// Appends `size` bytes at `data`.
  void update(const void *data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// Appends a length-prefixed field (8-byte little-endian length, then the
  /// bytes), so consecutive fields cannot be confused by concatenation.
  void updateField(std::string_view bytes);
  /// Pads and returns the digest; the object must not be updated afterwards.
  Sha256Digest finish();

private:
  void compress(const uint8_t *block);

  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t bufferSize_ = 0;
  uint64_t totalBytes_ = 0;
};

/// One-shot SHA-256 of `bytes`.
Sha256Digest sha256(std::string_view bytes);

/// Lowercase hex of `digest` (64 characters).
std::string toHex(const Sha256Digest &digest);

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_SHA256_H
