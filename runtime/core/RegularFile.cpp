//===- RegularFile.cpp - Bounded, non-blocking reads of regular files -----===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/regular_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fp {
namespace rt {

namespace {

const char *fileTypeName(mode_t mode) {
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

RegularFile failure(RegularFile::Outcome outcome, std::string problem) {
  RegularFile file;
  file.outcome = outcome;
  file.problem = std::move(problem);
  return file;
}

RegularFile notRegular(mode_t mode) {
  return failure(RegularFile::Outcome::kNotRegular,
                 std::string("is ") + fileTypeName(mode) +
                     ", not a regular file");
}

RegularFile tooLarge(uint64_t size, uint64_t maxBytes, bool atLeast) {
  return failure(RegularFile::Outcome::kTooLarge,
                 std::string("is ") + (atLeast ? "more than " : "") +
                     std::to_string(size) + " bytes, over the limit of " +
                     std::to_string(maxBytes));
}

} // namespace

RegularFile readRegularFile(const std::string &path, uint64_t maxBytes) {
  // stat() first so that devices and FIFOs are not even opened (opening
  // some devices has side effects); fstat() on the descriptor below closes
  // the race with a file replaced in between.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int error = errno;
    if (error == ENOENT || error == ENOTDIR)
      return failure(RegularFile::Outcome::kMissing, "does not exist");
    return failure(RegularFile::Outcome::kUnreadable, std::strerror(error));
  }
  if (!S_ISREG(st.st_mode))
    return notRegular(st.st_mode);

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    if (error == ENOENT || error == ENOTDIR)
      return failure(RegularFile::Outcome::kMissing, "does not exist");
    return failure(RegularFile::Outcome::kUnreadable, std::strerror(error));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::fstat(fd, &st) != 0)
    return failure(RegularFile::Outcome::kUnreadable, std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return notRegular(st.st_mode);
  if (st.st_size < 0 || uint64_t(st.st_size) > maxBytes)
    return tooLarge(uint64_t(st.st_size), maxBytes, false);

  // Read to EOF rather than trusting st_size (the file may change), but
  // never more than maxBytes + 1.
  RegularFile file;
  file.outcome = RegularFile::Outcome::kRead;
  file.bytes.resize(size_t(st.st_size) + 1);
  size_t done = 0;
  while (true) {
    if (done == file.bytes.size()) {
      if (done > maxBytes)
        return tooLarge(maxBytes, maxBytes, true);
      file.bytes.resize(
          size_t(std::min<uint64_t>(maxBytes + 1, 2 * uint64_t(done))));
    }
    ssize_t n = ::read(fd, &file.bytes[done], file.bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return failure(RegularFile::Outcome::kUnreadable, std::strerror(errno));
    if (n == 0)
      break;
    done += size_t(n);
  }
  if (done > maxBytes)
    return tooLarge(maxBytes, maxBytes, true);
  file.bytes.resize(done);
  return file;
}

} // namespace rt
} // namespace fp
