//===- Npy.cpp - Read and write NumPy .npy files ----------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The .npy format: magic "\x93NUMPY", major and minor version bytes, the
// header length (uint16 for 1.0, uint32 for 2.0 and 3.0), then a Python dict
// literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } padded with
// spaces and a final newline so the data starts 64-byte aligned, then the
// elements. Only what the project exchanges is accepted; everything else is
// an error naming the file and the expectation.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/npy.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unistd.h>

namespace fp {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

Status formatError(const std::string &what, const std::string &message) {
  return invalidArgument(what + ": " + message);
}

template <typename T> constexpr NpyType npyTypeOf();
template <> constexpr NpyType npyTypeOf<float>() { return NpyType::kFloat32; }
template <> constexpr NpyType npyTypeOf<double>() { return NpyType::kFloat64; }
template <> constexpr NpyType npyTypeOf<int32_t>() { return NpyType::kInt32; }
template <> constexpr NpyType npyTypeOf<uint16_t>() { return NpyType::kUInt16; }

template <typename T>
NpyArray makeArray(const std::vector<int64_t> &shape,
                   const std::vector<T> &values) {
  NpyArray array;
  array.type = npyTypeOf<T>();
  array.shape = shape;
  array.bytes.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(array.bytes.data(), values.data(), array.bytes.size());
  return array;
}

/// A cursor over the header dict text.
class HeaderParser {
public:
  HeaderParser(const std::string &text, const std::string &what)
      : text_(text), what_(what) {}

  Status parse(NpyArray &array) {
    bool haveDescr = false, haveOrder = false, haveShape = false;
    skipSpace();
    FP_RETURN_IF_ERROR(expect('{'));
    while (true) {
      skipSpace();
      if (peek() == '}')
        break;
      std::string key;
      FP_RETURN_IF_ERROR(parseString(key));
      skipSpace();
      FP_RETURN_IF_ERROR(expect(':'));
      skipSpace();
      if (key == "descr") {
        std::string descr;
        FP_RETURN_IF_ERROR(parseString(descr));
        FP_RETURN_IF_ERROR(parseDescr(descr, array.type));
        haveDescr = true;
      } else if (key == "fortran_order") {
        bool fortran = false;
        FP_RETURN_IF_ERROR(parseBool(fortran));
        if (fortran)
          return error("expected a C-order array, got fortran_order True");
        haveOrder = true;
      } else if (key == "shape") {
        FP_RETURN_IF_ERROR(parseShape(array.shape));
        haveShape = true;
      } else {
        return error("expected header keys 'descr', 'fortran_order' and "
                     "'shape', got '" +
                     key + "'");
      }
      skipSpace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skipSpace();
      if (peek() != '}')
        return error("expected ',' or '}' in the header dict");
    }
    if (!haveDescr || !haveOrder || !haveShape)
      return error("expected header keys 'descr', 'fortran_order' and "
                   "'shape', some are missing");
    return Status::ok();
  }

private:
  Status error(const std::string &message) const {
    return formatError(what_, message);
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n'))
      ++pos_;
  }
  Status expect(char c) {
    if (peek() != c)
      return error(std::string("expected '") + c + "' in the header dict");
    ++pos_;
    return Status::ok();
  }
  Status parseString(std::string &out) {
    char quote = peek();
    if (quote != '\'' && quote != '"')
      return error("expected a quoted string in the header dict");
    size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string::npos)
      return error("unterminated string in the header dict");
    out = text_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return Status::ok();
  }
  Status parseBool(bool &out) {
    if (text_.compare(pos_, 4, "True") == 0) {
      out = true;
      pos_ += 4;
    } else if (text_.compare(pos_, 5, "False") == 0) {
      out = false;
      pos_ += 5;
    } else {
      return error("expected True or False for 'fortran_order'");
    }
    return Status::ok();
  }
  Status parseShape(std::vector<int64_t> &shape) {
    shape.clear();
    FP_RETURN_IF_ERROR(expect('('));
    while (true) {
      skipSpace();
      if (peek() == ')') {
        ++pos_;
        return Status::ok();
      }
      if (peek() < '0' || peek() > '9')
        return error("expected a tuple of non-negative integers for 'shape'");
      int64_t value = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (value > (std::numeric_limits<int64_t>::max() - 9) / 10)
          return error("expected a shape that fits in 64 bits");
        value = value * 10 + (text_[pos_++] - '0');
      }
      shape.push_back(value);
      skipSpace();
      if (peek() == ',')
        ++pos_;
      else if (peek() != ')')
        return error("expected ',' or ')' in 'shape'");
    }
  }
  Status parseDescr(const std::string &descr, NpyType &type) {
    if (descr.size() == 3 && descr[0] == '>')
      return error("expected a little-endian array, got descr '" + descr + "'");
    if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '=')) {
      for (NpyType candidate : {NpyType::kFloat32, NpyType::kFloat64,
                                NpyType::kInt32, NpyType::kUInt16}) {
        if (descr.compare(1, 2, npyDescr(candidate) + 1) == 0) {
          type = candidate;
          return Status::ok();
        }
      }
    }
    return error("expected descr '<f4', '<f8', '<i4' or '<u2', got '" + descr +
                 "'");
  }

  const std::string &text_;
  const std::string &what_;
  size_t pos_ = 0;
};

/// Number of elements of `shape`, or -1 on overflow.
int64_t shapeElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return -1;
    if (dim != 0 && n > std::numeric_limits<int64_t>::max() / 16 / dim)
      return -1;
    n *= dim;
  }
  return n;
}

std::string errnoText() { return std::strerror(errno); }

} // namespace

int64_t npyItemSize(NpyType type) {
  switch (type) {
  case NpyType::kFloat32:
    return 4;
  case NpyType::kFloat64:
    return 8;
  case NpyType::kInt32:
    return 4;
  case NpyType::kUInt16:
    return 2;
  }
  return 0;
}

const char *npyDescr(NpyType type) {
  switch (type) {
  case NpyType::kFloat32:
    return "<f4";
  case NpyType::kFloat64:
    return "<f8";
  case NpyType::kInt32:
    return "<i4";
  case NpyType::kUInt16:
    return "<u2";
  }
  return "?";
}

int64_t NpyArray::numElements() const { return shapeElements(shape); }

template <typename T> std::vector<T> NpyArray::values() const {
  if (type != npyTypeOf<T>())
    return {};
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty())
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> NpyArray::values<float>() const;
template std::vector<double> NpyArray::values<double>() const;
template std::vector<int32_t> NpyArray::values<int32_t>() const;
template std::vector<uint16_t> NpyArray::values<uint16_t>() const;

NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<float> &values) {
  return makeArray(shape, values);
}
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<double> &values) {
  return makeArray(shape, values);
}
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<int32_t> &values) {
  return makeArray(shape, values);
}
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<uint16_t> &values) {
  return makeArray(shape, values);
}

StatusOr<NpyArray> parseNpy(const std::vector<uint8_t> &file,
                            const std::string &what) {
  if (file.size() < kMagicSize + 4 ||
      std::memcmp(file.data(), kMagic, kMagicSize) != 0)
    return formatError(what, "expected an .npy file (magic \\x93NUMPY), got " +
                                 std::to_string(file.size()) +
                                 " bytes without it");
  int major = file[6];
  size_t headerLen = 0, headerStart = 0;
  if (major == 1) {
    headerLen = file[8] | (static_cast<size_t>(file[9]) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12)
      return formatError(what, "expected a 12-byte preamble, file too short");
    headerLen = file[8] | (static_cast<size_t>(file[9]) << 8) |
                (static_cast<size_t>(file[10]) << 16) |
                (static_cast<size_t>(file[11]) << 24);
    headerStart = 12;
  } else {
    return formatError(what, "expected format version 1.0, 2.0 or 3.0, got " +
                                 std::to_string(major) + "." +
                                 std::to_string(file[7]));
  }
  if (file.size() < headerStart + headerLen)
    return formatError(what, "expected a header of " +
                                 std::to_string(headerLen) +
                                 " bytes, file too short");
  std::string header(reinterpret_cast<const char *>(file.data()) + headerStart,
                     headerLen);
  NpyArray array;
  FP_RETURN_IF_ERROR(HeaderParser(header, what).parse(array));
  int64_t count = shapeElements(array.shape);
  if (count < 0)
    return formatError(what, "expected a shape whose size fits in memory");
  size_t dataStart = headerStart + headerLen;
  uint64_t expected = static_cast<uint64_t>(count) *
                      static_cast<uint64_t>(npyItemSize(array.type));
  uint64_t available = file.size() - dataStart;
  if (available != expected)
    return formatError(what, "expected " + std::to_string(expected) +
                                 " bytes of " + npyDescr(array.type) +
                                 " data after the header, got " +
                                 std::to_string(available));
  array.bytes.assign(file.begin() + static_cast<std::ptrdiff_t>(dataStart),
                     file.end());
  return array;
}

StatusOr<NpyArray> readNpy(const std::string &path) {
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file) {
    StatusCode code =
        errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError;
    return Status(code,
                  path + ": cannot open for reading (" + errnoText() + ")");
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), file)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + n);
  bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed)
    return Status(StatusCode::kIoError, path + ": read failed");
  return parseNpy(bytes, path);
}

StatusOr<std::vector<uint8_t>> serializeNpy(const NpyArray &array) {
  int64_t count = shapeElements(array.shape);
  if (count < 0 || static_cast<uint64_t>(count) *
                           static_cast<uint64_t>(npyItemSize(array.type)) !=
                       array.bytes.size())
    return invalidArgument(
        "array.bytes: expected numElements() * item size = " +
        std::to_string(count * npyItemSize(array.type)) + " bytes, got " +
        std::to_string(array.bytes.size()));
  std::string dict = std::string("{'descr': '") + npyDescr(array.type) +
                     "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < array.shape.size(); ++i)
    dict += std::to_string(array.shape[i]) + ", ";
  if (array.shape.size() > 1)
    dict.erase(dict.size() - 2); // "(2, 3)" but "(5,)" for one dimension
  else if (array.shape.size() == 1)
    dict.erase(dict.size() - 1);
  dict += "), }";
  // Pad with spaces so preamble + header is a multiple of 64, then '\n'.
  size_t preamble = 10;
  size_t total = preamble + dict.size() + 1;
  if ((total + 63) / 64 * 64 - preamble > 0xffff) {
    preamble = 12;
    total = preamble + dict.size() + 1;
  }
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  std::vector<uint8_t> out(kMagic, kMagic + kMagicSize);
  size_t headerLen = dict.size();
  if (preamble == 10) {
    out.push_back(1);
    out.push_back(0);
    out.push_back(static_cast<uint8_t>(headerLen & 0xff));
    out.push_back(static_cast<uint8_t>(headerLen >> 8));
  } else {
    out.push_back(2);
    out.push_back(0);
    for (int shift = 0; shift < 32; shift += 8)
      out.push_back(static_cast<uint8_t>((headerLen >> shift) & 0xff));
  }
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), array.bytes.begin(), array.bytes.end());
  return out;
}

Status writeNpy(const std::string &path, const NpyArray &array) {
  StatusOr<std::vector<uint8_t>> bytes = serializeNpy(array);
  if (!bytes.isOk())
    return invalidArgument(path + ": " + bytes.status().message());
  // A unique sibling name, so rename() is atomic (same file system) and
  // concurrent writers never share a temporary file.
  static std::atomic<unsigned> counter{0};
  std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(counter.fetch_add(1));
  std::FILE *file = std::fopen(temp.c_str(), "wb");
  if (!file)
    return Status(StatusCode::kIoError,
                  path + ": cannot create " + temp + " (" + errnoText() + ")");
  bool ok = std::fwrite(bytes->data(), 1, bytes->size(), file) == bytes->size();
  ok = std::fflush(file) == 0 && ok;
  ok = ::fsync(::fileno(file)) == 0 && ok;
  std::string reason = ok ? "" : errnoText();
  ok = std::fclose(file) == 0 && ok;
  if (!ok) {
    std::remove(temp.c_str());
    return Status(StatusCode::kIoError,
                  path + ": write failed (" + reason + ")");
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    reason = errnoText();
    std::remove(temp.c_str());
    return Status(StatusCode::kIoError,
                  path + ": cannot rename the temporary file into place (" +
                      reason + ")");
  }
  return Status::ok();
}

} // namespace fp
