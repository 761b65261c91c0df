//===- Sha256Test.cpp - SHA-256 against FIPS 180-4 vectors ----------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/sha256.h"

#include <gtest/gtest.h>

using namespace fp::rt;

namespace {

// The digest matches the published FIPS 180-4 / NIST example vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(toHex(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(toHex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(
      toHex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(toHex(sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Feeding the same bytes in arbitrary chunks gives the one-shot digest.
TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i)
    data.push_back(char(i * 7 + 3));
  for (size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u, 999u}) {
    Sha256 hasher;
    for (size_t pos = 0; pos < data.size(); pos += chunk)
      hasher.update(data.substr(pos, chunk));
    EXPECT_EQ(toHex(hasher.finish()), toHex(sha256(data))) << "chunk " << chunk;
  }
}

// Length-prefixed fields keep ("ab","c") and ("a","bc") apart.
TEST(Sha256Test, FieldsAreUnambiguous) {
  Sha256 a, b;
  a.updateField("ab");
  a.updateField("c");
  b.updateField("a");
  b.updateField("bc");
  EXPECT_NE(toHex(a.finish()), toHex(b.finish()));
}

} // namespace
