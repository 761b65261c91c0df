//===- EmbeddedHeadersTest.cpp - Build-time embedded device headers -------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/embedded_headers.h"

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace fp::rt;

namespace {

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fp/params.h is embedded byte for byte, NUL-terminated, under "fp/params.h".
TEST(EmbeddedHeadersTest, ParamsHeaderMatchesSourceTree) {
  const EmbeddedHeader *header = findEmbeddedHeader("fp/params.h");
  ASSERT_NE(header, nullptr);
  std::string onDisk =
      readFile(std::string(FP_DEVICE_HEADER_DIR) + "/fp/params.h");
  ASSERT_FALSE(onDisk.empty());
  EXPECT_EQ(std::string(header->contents, header->size), onDisk);
  EXPECT_EQ(header->contents[header->size], '\0');
}

// Every embedded header lives under fp/, sorted, and each one is findable.
TEST(EmbeddedHeadersTest, TableIsSortedAndComplete) {
  ASSERT_GE(embeddedHeaderCount(), 1u);
  for (size_t i = 0; i < embeddedHeaderCount(); ++i) {
    std::string name = embeddedHeader(i).name;
    EXPECT_EQ(name.substr(0, 3), "fp/") << name;
    EXPECT_EQ(findEmbeddedHeader(name), &embeddedHeader(i));
    std::string onDisk =
        readFile(std::string(FP_DEVICE_HEADER_DIR) + "/" + name);
    // EXPECT_TRUE, not EXPECT_EQ: a mismatch should not print whole files.
    EXPECT_TRUE(std::string(embeddedHeader(i).contents,
                            embeddedHeader(i).size) == onDisk)
        << name << " is stale: the build did not re-embed it";
    if (i > 0) {
      EXPECT_LT(std::string(embeddedHeader(i - 1).name), name);
    }
  }
  EXPECT_EQ(findEmbeddedHeader("fp/does-not-exist.h"), nullptr);
}

// The content hash is a 64-digit lowercase hex SHA-256.
TEST(EmbeddedHeadersTest, ContentHashIsHexSha256) {
  std::string_view hash = embeddedHeadersHash();
  ASSERT_EQ(hash.size(), 64u);
  for (char c : hash)
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hash;
}

// Relative quoted includes of embedded headers become rooted "fp/..." names;
// rooted, system, unknown and non-include lines are untouched, and the line
// count is preserved.
TEST(EmbeddedHeadersTest, RewriteRelativeIncludes) {
  auto isEmbedded = [](const std::string &name) {
    return name == "fp/common.cuh" || name == "fp/arch/mma.cuh" ||
           name == "fp/params.h";
  };
  std::string in = "#include \"../common.cuh\"\n"
                   "  #  include \"mma.cuh\" // same dir\n"
                   "#include \"fp/params.h\"\n"
                   "#include <cuda_bf16.h>\n"
                   "#include \"missing.cuh\"\n"
                   "#include \"../../escape.h\"\n"
                   "const char *s = \"#include \\\"../common.cuh\\\"\";\n"
                   "#include \"./mma.cuh\"";
  std::string expected = "#include \"fp/common.cuh\"\n"
                         "  #  include \"fp/arch/mma.cuh\" // same dir\n"
                         "#include \"fp/params.h\"\n"
                         "#include <cuda_bf16.h>\n"
                         "#include \"missing.cuh\"\n"
                         "#include \"../../escape.h\"\n"
                         "const char *s = \"#include \\\"../common.cuh\\\"\";\n"
                         "#include \"fp/arch/mma.cuh\"";
  EXPECT_EQ(rewriteRelativeIncludes(in, "fp/arch/x.cuh", isEmbedded), expected);
  EXPECT_EQ(rewriteRelativeIncludes("#include \"arch/mma.cuh\"\n",
                                    "fp/common.cuh", isEmbedded),
            "#include \"fp/arch/mma.cuh\"\n");
}

} // namespace
