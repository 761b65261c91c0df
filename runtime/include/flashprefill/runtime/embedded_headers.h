//===- flashprefill/runtime/embedded_headers.h - Device headers -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The headers under runtime/device/fp/, embedded at build time
// (runtime/core/cmake/EmbedDeviceHeaders.cmake) so NVRTC compiles generated
// kernels without a source tree or install path at run time.
//
// Includes between device headers may be relative ("common.cuh",
// "../common.cuh", "arch/mma_sm80.cuh") or rooted ("fp/common.cuh"), as with
// nvcc -Iruntime/device. NVRTC matches an #include against registered header
// names literally (it does not search the including header's directory), so
// before handing the headers to NVRTC the wrapper rewrites each quoted
// include that names an embedded header relative to its includer into the
// rooted "fp/..." form (rewriteRelativeIncludes; line numbers unchanged).
// Kernel sources include the headers as "fp/<name>".
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_EMBEDDED_HEADERS_H
#define FLASHPREFILL_RUNTIME_EMBEDDED_HEADERS_H

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace fp {
namespace rt {

/// One embedded header: its include name and NUL-terminated contents.
struct EmbeddedHeader {
  const char *name;     ///< include name, e.g. "fp/params.h"
  const char *contents; ///< the file's bytes followed by a NUL
  size_t size;          ///< byte count, without the trailing NUL
};

/// Number of embedded headers.
size_t embeddedHeaderCount();

/// The header at `index` (< embeddedHeaderCount()), sorted by name.
const EmbeddedHeader &embeddedHeader(size_t index);

/// The header named `name` ("fp/params.h"), or nullptr.
const EmbeddedHeader *findEmbeddedHeader(std::string_view name);

/// Lowercase hex SHA-256 over every header's name and contents; part of the
/// kernel cache key, so editing any device header invalidates cached kernels.
std::string_view embeddedHeadersHash();

/// Returns `contents` (the header named `includerName`, e.g.
/// "fp/arch/mma_sm80.cuh") with every `#include "x"` whose path, taken
/// relative to the includer's directory, names a header for which
/// `isEmbedded` is true rewritten to `#include "<that name>"`. Other
/// includes (rooted names, <system> headers, unknown files) are left as
/// they are, as is everything else, so line numbers stay the same.
std::string rewriteRelativeIncludes(
    std::string_view contents, std::string_view includerName,
    const std::function<bool(const std::string &)> &isEmbedded);

namespace detail {
// Defined by the generated EmbeddedDeviceHeaders.cpp.
extern const EmbeddedHeader kEmbeddedHeaderTable[];
extern const size_t kEmbeddedHeaderTableSize;
extern const char kEmbeddedHeaderContentHash[];
} // namespace detail

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_EMBEDDED_HEADERS_H
