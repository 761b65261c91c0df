//===- flashprefill/npy.h - Read and write NumPy .npy files -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Minimal .npy support for test vectors exchanged with Python (numpy.save /
// numpy.load). Supported:
//   * format versions 1.0, 2.0 and 3.0 on read; 1.0 (2.0 when the header
//     needs it) on write;
//   * little-endian, C order only;
//   * element types float32 ('<f4'), float64 ('<f8'), int32 ('<i4') and
//     uint16 ('<u2').
// bf16 and fp16 tensors are stored as uint16 arrays holding the raw 16-bit
// patterns (numpy has no bf16; `arr.view(np.uint16)` in Python, or
// `torch_tensor.view(torch.int16).numpy().view(np.uint16)`), so the file
// itself does not say which of the two it is: the reader passes the DType.
// Errors are fp::Status values naming the path and what was expected. Writes
// go to a temporary file in the same directory, then rename() over the
// target, so a reader never sees a half-written file.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_NPY_H
#define FLASHPREFILL_NPY_H

#include "flashprefill/status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fp {

/// Element types an .npy file may hold here.
enum class NpyType : uint8_t {
  kFloat32, ///< '<f4'
  kFloat64, ///< '<f8'
  kInt32,   ///< '<i4'
  kUInt16,  ///< '<u2' (also bf16 / fp16 bit patterns)
};

/// Bytes per element of `type`.
int64_t npyItemSize(NpyType type);
/// The numpy descr string of `type`, e.g. "<f4".
const char *npyDescr(NpyType type);

/// An n-dimensional array as stored in an .npy file: C order, little-endian
/// element bytes (this library only runs on little-endian hosts).
struct NpyArray {
  NpyType type = NpyType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes; ///< numElements() * npyItemSize(type) bytes

  /// Product of the shape (1 for a 0-d array).
  int64_t numElements() const;
  /// Copies the elements out; `T` must match `type` (float, double, int32_t,
  /// uint16_t), else an empty vector is returned.
  template <typename T> std::vector<T> values() const;
};

/// Builds an array from typed values (shape product must equal the size).
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<float> &values);
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<double> &values);
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<int32_t> &values);
NpyArray makeNpyArray(const std::vector<int64_t> &shape,
                      const std::vector<uint16_t> &values);

/// Reads an .npy file. Errors (kNotFound, kIoError, kInvalidArgument) name
/// `path` and what was expected, e.g. "x.npy: expected a little-endian C-order
/// array, got fortran_order True".
StatusOr<NpyArray> readNpy(const std::string &path);

/// Writes `array` to `path` atomically (temporary file + rename). Fails with
/// kInvalidArgument when bytes.size() does not match the shape.
Status writeNpy(const std::string &path, const NpyArray &array);

/// Parses the bytes of a whole .npy file; `what` names it in errors.
StatusOr<NpyArray> parseNpy(const std::vector<uint8_t> &file,
                            const std::string &what);

/// The bytes of the .npy file for `array` (header + data).
StatusOr<std::vector<uint8_t>> serializeNpy(const NpyArray &array);

} // namespace fp

#endif // FLASHPREFILL_NPY_H
