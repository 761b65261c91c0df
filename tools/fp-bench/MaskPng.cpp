//===- MaskPng.cpp - fp-bench --mask-png: one head's kept blocks ----------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "MaskPng.h"

#include <png.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

namespace fp::bench {
namespace {

struct Rgb {
  uint8_t r, g, b;
};
constexpr Rgb kKept{31, 119, 180};
constexpr Rgb kNotKept{235, 235, 235};
constexpr Rgb kAboveDiagonal{64, 64, 64};
constexpr Rgb kDiagonalKept{214, 39, 40};
constexpr Rgb kDiagonalNotKept{255, 187, 120};

constexpr int64_t kTargetSide = 1024, kMaxPixelsPerBlock = 32;

std::string errnoText(int error) { return std::strerror(error); }

Rgb blend(Rgb from, Rgb to, double t) {
  auto mix = [t](uint8_t a, uint8_t b) {
    return uint8_t(std::lround(a + (double(b) - a) * t));
  };
  return {mix(from.r, to.r), mix(from.g, to.g), mix(from.b, to.b)};
}

/// The temporary sibling pattern of `path` for mkstemp.
std::string tempPattern(const std::string &path) {
  return path + ".tmp.XXXXXX";
}

/// libpng reports errors through longjmp: this frame holds only trivially
/// destructible locals, and `nextRow` (C++ code) runs between libpng calls,
/// never under one, so the jump skips no destructor.
bool encodePng(std::FILE *file, uint32_t side,
               const std::function<const uint8_t *()> &nextRow,
               char (&error)[256]) {
  png_structp png = png_create_write_struct(
      PNG_LIBPNG_VER_STRING, error,
      [](png_structp p, png_const_charp message) {
        auto *buffer = static_cast<char *>(png_get_error_ptr(p));
        std::snprintf(buffer, 256, "libpng: %s", message);
        png_longjmp(p, 1);
      },
      [](png_structp, png_const_charp) {});
  if (!png) {
    std::snprintf(error, sizeof error, "libpng: cannot create a writer");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    std::snprintf(error, sizeof error, "libpng: cannot create an info struct");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, side, side, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < side; ++y)
    png_write_row(png, nextRow());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

} // namespace

MaskImageGeometry maskImageGeometry(int64_t numBlocks) {
  MaskImageGeometry g;
  if (numBlocks <= kTargetSide) {
    g.pixelsPerBlock = std::clamp<int64_t>(kTargetSide / std::max<int64_t>(1, numBlocks), 1,
                                           kMaxPixelsPerBlock);
    g.side = numBlocks * g.pixelsPerBlock;
  } else {
    g.blocksPerPixel = (numBlocks + kTargetSide - 1) / kTargetSide;
    g.side = (numBlocks + g.blocksPerPixel - 1) / g.blocksPerPixel;
  }
  return g;
}

Status checkMaskPngWritable(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return invalidArgument("--mask-png: '" + path +
                           "' is a directory; expected a file name");
  std::string probe = tempPattern(path);
  int fd = ::mkstemp(probe.data());
  if (fd < 0)
    return invalidArgument("--mask-png: cannot create '" + path + "' (" +
                           errnoText(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::ok();
}

Status writeMaskPng(const std::string &path, const HeadMask &mask) {
  const int64_t nb = mask.numBlocks;
  if (nb <= 0 || !mask.counts || !mask.ids)
    return invalidArgument(path + ": no mask to draw");
  for (int64_t i = 0; i < nb; ++i) {
    if (mask.counts[i] < 0 || mask.counts[i] > nb)
      return invalidArgument(path + ": query block " + std::to_string(i) +
                             " keeps " + std::to_string(mask.counts[i]) +
                             " blocks; expected [0, " + std::to_string(nb) +
                             "]");
    for (int32_t c = 0; c < mask.counts[i]; ++c)
      if (int32_t id = mask.ids[i * nb + c]; id < 0 || id > i)
        return invalidArgument(path + ": query block " + std::to_string(i) +
                               " keeps key block " + std::to_string(id) +
                               "; expected a causal block in [0, " +
                               std::to_string(i) + "]");
  }

  const MaskImageGeometry g = maskImageGeometry(nb);
  const int64_t cell = g.blocksPerPixel, cells = (nb + cell - 1) / cell;
  std::vector<uint8_t> row(size_t(g.side) * 3);
  std::vector<int64_t> keptIn(cells), diagonalKept(1);
  int64_t pixelRow = 0;
  // One image row per call: a row of cells is recomputed at the first pixel
  // row of each cell row, then repeated pixelsPerBlock times.
  auto nextRow = [&]() -> const uint8_t * {
    const int64_t cellRow = pixelRow / g.pixelsPerBlock;
    if (pixelRow++ % g.pixelsPerBlock != 0)
      return row.data();
    const int64_t firstQuery = cellRow * cell,
                  lastQuery = std::min(nb, firstQuery + cell); // exclusive
    std::fill(keptIn.begin(), keptIn.end(), 0);
    int64_t diagonalKeptCount = 0;
    for (int64_t i = firstQuery; i < lastQuery; ++i)
      for (int32_t c = 0; c < mask.counts[i]; ++c) {
        const int64_t j = mask.ids[i * nb + c];
        ++keptIn[j / cell];
        diagonalKeptCount += j == i;
      }
    for (int64_t cellCol = 0; cellCol < cells; ++cellCol) {
      const int64_t firstKey = cellCol * cell,
                    lastKey = std::min(nb, firstKey + cell);
      Rgb colour;
      if (cellCol == cellRow) {
        colour = diagonalKeptCount == lastQuery - firstQuery ? kDiagonalKept
                                                             : kDiagonalNotKept;
      } else if (cellCol > cellRow) {
        colour = kAboveDiagonal;
      } else {
        // Below the diagonal cell every (query, key) pair is causal.
        const double causal =
            double(lastQuery - firstQuery) * double(lastKey - firstKey);
        colour = blend(kNotKept, kKept, double(keptIn[cellCol]) / causal);
      }
      for (int64_t p = 0; p < g.pixelsPerBlock; ++p) {
        uint8_t *px = &row[size_t((cellCol * g.pixelsPerBlock + p) * 3)];
        px[0] = colour.r, px[1] = colour.g, px[2] = colour.b;
      }
    }
    return row.data();
  };

  std::string temp = tempPattern(path);
  int fd = ::mkstemp(temp.data());
  if (fd < 0)
    return Status(StatusCode::kIoError, path + ": cannot create a temporary "
                                               "file (" +
                                               errnoText(errno) + ")");
  // mkstemp makes the file 0600; a PNG is as readable as other outputs.
  const mode_t mask0 = ::umask(0);
  ::umask(mask0);
  ::fchmod(fd, 0666 & ~mask0);
  std::FILE *file = ::fdopen(fd, "wb");
  if (!file) {
    const int error = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return Status(StatusCode::kIoError,
                  path + ": cannot open the temporary file (" +
                      errnoText(error) + ")");
  }
  char pngError[256] = "";
  bool ok = encodePng(file, uint32_t(g.side), nextRow, pngError);
  std::string reason = ok ? "" : pngError;
  errno = 0;
  if (ok && (std::fflush(file) != 0 || ::fsync(::fileno(file)) != 0)) {
    ok = false;
    reason = errnoText(errno);
  }
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    reason = errnoText(errno);
  }
  if (ok && std::rename(temp.c_str(), path.c_str()) != 0) {
    ok = false;
    reason = "cannot rename the temporary file into place: " + errnoText(errno);
  }
  if (!ok) {
    ::unlink(temp.c_str());
    return Status(StatusCode::kIoError, path + ": write failed (" + reason + ")");
  }
  return Status::ok();
}

} // namespace fp::bench
