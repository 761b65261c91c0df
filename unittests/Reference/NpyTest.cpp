//===- NpyTest.cpp - .npy read/write tests ----------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

/// A fresh directory under the test's temp dir, removed with its files.
class TempDir {
public:
  TempDir() {
    char pattern[] = "/tmp/fp-npy-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() {
    for (const std::string &name : list())
      std::remove((path_ + "/" + name).c_str());
    rmdir(path_.c_str());
  }
  std::string file(const std::string &name) const { return path_ + "/" + name; }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR *dir = opendir(path_.c_str())) {
      while (dirent *entry = readdir(dir))
        if (entry->d_name[0] != '.')
          names.push_back(entry->d_name);
      closedir(dir);
    }
    return names;
  }

private:
  std::string path_;
};

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A version-1.0 file with header dict `dict` (padded as numpy does) and
/// `data` after it.
std::string npyFile(const std::string &dict, const std::string &data,
                    int major = 1) {
  std::string header = dict;
  size_t preamble = major == 1 ? 10 : 12;
  while ((preamble + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  size_t n = header.size();
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>((n >> 24) & 0xff);
  }
  return out + header + data;
}

std::string floatBytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values)
    out.append(reinterpret_cast<const char *>(&v), sizeof(v));
  return out;
}

} // namespace

// Each element type round-trips through a file with its shape.
TEST(Npy, RoundTripsEveryType) {
  TempDir dir;
  std::vector<int64_t> shape = {2, 3};
  std::vector<NpyArray> arrays = {
      makeNpyArray(shape, std::vector<float>{1.5f, -2, 3, 4, 5, 6.25f}),
      makeNpyArray(shape, std::vector<double>{1e300, -2, 3, 4, 5, 6}),
      makeNpyArray(shape, std::vector<int32_t>{-1, 2, 3, 4, 5, 1 << 30}),
      makeNpyArray(shape, std::vector<uint16_t>{0x3f80, 0xffff, 3, 4, 5, 6}),
      makeNpyArray({5}, std::vector<float>{1, 2, 3, 4, 5}),
      makeNpyArray({}, std::vector<double>{42.0}),
      makeNpyArray({0, 4}, std::vector<int32_t>{}),
  };
  for (size_t n = 0; n < arrays.size(); ++n) {
    std::string path = dir.file("a" + std::to_string(n) + ".npy");
    ASSERT_TRUE(writeNpy(path, arrays[n]).isOk());
    StatusOr<NpyArray> back = readNpy(path);
    ASSERT_TRUE(back.isOk()) << back.status().toString();
    EXPECT_EQ(back->type, arrays[n].type) << n;
    EXPECT_EQ(back->shape, arrays[n].shape) << n;
    EXPECT_EQ(back->bytes, arrays[n].bytes) << n;
  }
  EXPECT_EQ(arrays[2].values<int32_t>()[5], 1 << 30);
  EXPECT_TRUE(arrays[2].values<float>().empty()); // wrong type: empty
}

// The written header is what numpy.save writes: same dict text, padded so
// the data starts at a multiple of 64, ending with a newline.
TEST(Npy, HeaderMatchesNumpy) {
  StatusOr<std::vector<uint8_t>> bytes =
      serializeNpy(makeNpyArray({2, 3}, std::vector<float>(6, 0.0f)));
  ASSERT_TRUE(bytes.isOk());
  std::string file(bytes->begin(), bytes->end());
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_EQ(file, npyFile(dict, std::string(24, '\0')));
  EXPECT_EQ((file.size() - 24) % 64, 0u);
  StatusOr<std::vector<uint8_t>> one =
      serializeNpy(makeNpyArray({7}, std::vector<uint16_t>(7, 0)));
  ASSERT_TRUE(one.isOk());
  EXPECT_NE(std::string(one->begin(), one->end()).find("'shape': (7,)"),
            std::string::npos);
}

// Files written by other tools parse: version 2.0, double quotes, other key
// order, no trailing comma.
TEST(Npy, ReadsOtherHeaderSpellings) {
  TempDir dir;
  std::string path = dir.file("v2.npy");
  writeBytes(path, npyFile("{\"shape\": (2,), \"fortran_order\": False, "
                           "\"descr\": \"<f4\"}",
                           floatBytes({1, 2}), 2));
  StatusOr<NpyArray> a = readNpy(path);
  ASSERT_TRUE(a.isOk()) << a.status().toString();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(a->values<float>(), (std::vector<float>{1, 2}));
}

// Bad files give errors that name the path and what was expected.
TEST(Npy, BadFilesNameThePathAndExpectation) {
  TempDir dir;
  std::string missing = dir.file("missing.npy");
  StatusOr<NpyArray> r = readNpy(missing);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            missing + ": cannot open for reading (No such file or directory)");

  struct Case {
    std::string bytes, message;
  };
  std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const Case cases[] = {
      {"not an npy file at all", "expected an .npy file (magic \\x93NUMPY), "
                                 "got 22 bytes without it"},
      {npyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
               floatBytes({1, 2})),
       "expected a little-endian array, got descr '>f4'"},
      {npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
               floatBytes({1, 2})),
       "expected a C-order array, got fortran_order True"},
      {npyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
               std::string(16, '\0')),
       "expected descr '<f4', '<f8', '<i4' or '<u2', got '<i8'"},
      {npyFile(f4, floatBytes({1})),
       "expected 8 bytes of <f4 data after the header, got 4"},
      {npyFile(f4, floatBytes({1, 2, 3})),
       "expected 8 bytes of <f4 data after the header, got 12"},
      {npyFile("{'descr': '<f4', 'shape': (2,), }", floatBytes({1, 2})),
       "expected header keys 'descr', 'fortran_order' and 'shape', some are "
       "missing"},
      {npyFile(f4, floatBytes({1, 2}), 9),
       "expected format version 1.0, 2.0 or 3.0, got 9.0"},
  };
  for (const Case &c : cases) {
    std::string path = dir.file("bad.npy");
    writeBytes(path, c.bytes);
    StatusOr<NpyArray> bad = readNpy(path);
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_EQ(bad.status().message(), path + ": " + c.message);
  }
}

// Writes are atomic: an existing file is replaced whole, no temporary file
// remains, and a failed write leaves nothing behind.
TEST(Npy, WritesAreAtomic) {
  TempDir dir;
  std::string path = dir.file("t.npy");
  ASSERT_TRUE(
      writeNpy(path, makeNpyArray({3}, std::vector<float>{1, 2, 3})).isOk());
  ASSERT_TRUE(
      writeNpy(path, makeNpyArray({1}, std::vector<int32_t>{9})).isOk());
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"t.npy"}));
  StatusOr<NpyArray> back = readNpy(path);
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->values<int32_t>(), (std::vector<int32_t>{9}));

  Status s = writeNpy(dir.file("no/such/dir.npy"),
                      makeNpyArray({1}, std::vector<float>{1}));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find(dir.file("no/such/dir.npy")), std::string::npos);

  NpyArray inconsistent = makeNpyArray({4}, std::vector<float>{1, 2});
  s = writeNpy(path, inconsistent);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), path + ": array.bytes: expected numElements() * "
                                "item size = 16 bytes, got 8");
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"t.npy"}));
}

// Tensors travel as uint16 bit patterns; float32 input is rounded to the
// dtype; other shapes and types are rejected by name.
TEST(Npy, TensorConversion) {
  Tensor t = randomTensor(DType::kBF16, 1, 3, 2, 4, 1);
  NpyArray array = tensorToNpy(t);
  EXPECT_EQ(array.type, NpyType::kUInt16);
  EXPECT_EQ(array.shape, (std::vector<int64_t>{1, 3, 2, 4}));
  StatusOr<Tensor> back = tensorFromNpy(array, DType::kBF16);
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->storage(), t.storage());

  NpyArray floats = makeNpyArray({1, 1, 1, 2}, std::vector<float>{3.14159f, 1});
  StatusOr<Tensor> rounded = tensorFromNpy(floats, DType::kBF16, "q.npy");
  ASSERT_TRUE(rounded.isOk());
  EXPECT_EQ(rounded->at(0, 0, 0, 0), 3.140625f);

  StatusOr<Tensor> flat = tensorFromNpy(
      makeNpyArray({2}, std::vector<float>{1, 2}), DType::kF16, "k.npy");
  EXPECT_EQ(flat.status().message(),
            "k.npy: expected a 4-d array [b, s, h, d], got 1 dimensions");
  StatusOr<Tensor> ints = tensorFromNpy(
      makeNpyArray({1, 1, 1, 1}, std::vector<int32_t>{1}), DType::kF16, "v");
  EXPECT_EQ(ints.status().message(), "v: expected uint16 (bf16/f16 bit "
                                     "patterns) or float32 elements, got <i4");

  // Pooled tensors keep their [b, h, nb, d] storage shape.
  Tensor pooled = Tensor::zeros(DType::kBF16, 1, 5, 2, 4, Layout::kBHSD);
  EXPECT_EQ(tensorToNpy(pooled).shape, (std::vector<int64_t>{1, 2, 5, 4}));
}
