//===- flashprefill/runtime/regular_file.h - Bounded file reads -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Files the library reads on its own (kernel-cache entries, the tuning
// database) may be anything a user or another process put at that path: a
// FIFO (open() for reading would block until a writer comes, forever), a
// device (/dev/zero never ends), a directory, a multi-GiB file. This reads
// regular files only, without ever blocking, up to a size limit.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_REGULAR_FILE_H
#define FLASHPREFILL_RUNTIME_REGULAR_FILE_H

#include <cstdint>
#include <string>

namespace fp {
namespace rt {

/// What readRegularFile found at a path.
struct RegularFile {
  enum class Outcome {
    kRead,       ///< `bytes` holds the whole file
    kMissing,    ///< nothing at the path (or a path component is missing)
    kNotRegular, ///< a directory, FIFO, device or socket: not opened/read
    kTooLarge,   ///< larger than the limit: not read
    kUnreadable, ///< open() or read() failed (permissions, I/O error)
  };
  Outcome outcome = Outcome::kMissing;
  std::string bytes;
  /// Why it was not read, for messages: "is a FIFO, not a regular file",
  /// "is 70000000 bytes, over the limit of 67108864", "Permission denied".
  std::string problem;
};

/// Reads `path` if it is a regular file of at most `maxBytes` bytes. Never
/// blocks: a path that is not a regular file is not read (a FIFO is opened
/// non-blocking, if at all, and never read). A file that grows past
/// `maxBytes` while being read is kTooLarge.
RegularFile readRegularFile(const std::string &path, uint64_t maxBytes);

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_REGULAR_FILE_H
