//===- flashprefill/dtype.h - Host bf16 / fp16 conversion -------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The operator's element types, bf16 and fp16, are held on the host as their
// 16-bit patterns (uint16_t). These functions convert between those patterns
// and float in software, so the CPU reference, tests and tools agree with the
// GPU bit for bit without compiler or hardware half-precision support:
//   * float -> 16 bit rounds to nearest, ties to even (what __float2bfloat16_rn
//     and __float2half_rn do), overflowing to +-inf;
//   * NaN stays NaN (quiet, sign kept); +-inf and +-0 are preserved;
//   * fp16 subnormals are produced and read exactly;
//   * 16 bit -> float is exact (every bf16 and fp16 value is a float).
// Header-only and dependency-free so any layer can include it.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_DTYPE_H
#define FLASHPREFILL_DTYPE_H

#include <cstdint>
#include <cstring>

namespace fp {

/// Element type of Q, K, V and O. Values match no C API on purpose: pass
/// them around as this enum and name them with dtypeName().
enum class DType : uint8_t {
  kBF16, ///< bfloat16: 8 exponent bits, 7 mantissa bits
  kF16,  ///< IEEE binary16: 5 exponent bits, 10 mantissa bits
};

/// "bf16" or "f16".
inline const char *dtypeName(DType type) {
  return type == DType::kBF16 ? "bf16" : "f16";
}

namespace detail {
inline uint32_t floatAsBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}
inline float bitsAsFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}
} // namespace detail

/// Rounds `value` to the nearest bf16 (ties to even) and returns its bits.
inline uint16_t floatToBF16Bits(float value) {
  uint32_t bits = detail::floatAsBits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep sign and top payload,
    return static_cast<uint16_t>((bits >> 16) | 0x0040u); // force quiet.
  // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry into
  // the exponent is the correct result (including overflow to inf).
  uint32_t lsb = (bits >> 16) & 1u;
  return static_cast<uint16_t>((bits + 0x7fffu + lsb) >> 16);
}

/// The float value of a bf16 bit pattern (exact).
inline float bf16BitsToFloat(uint16_t bits) {
  return detail::bitsAsFloat(static_cast<uint32_t>(bits) << 16);
}

/// Rounds `value` to the nearest fp16 (ties to even) and returns its bits.
inline uint16_t floatToF16Bits(float value) {
  uint32_t bits = detail::floatAsBits(value);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) // NaN: quiet, keep the top payload bits.
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  // 65520 = 0x477ff000 is halfway between 65504 (largest fp16, odd mantissa)
  // and 65536, so it and everything above rounds to inf (inf included).
  if (abs >= 0x477ff000u)
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) { // below 2^-14: fp16 subnormal or zero.
    // The result is round(|value| * 2^24) as an integer mantissa. With the
    // implicit bit, |value| = mant * 2^(exp - 150), so shift right by
    // 126 - exp. A shift of 25 or more leaves less than half a unit.
    uint32_t exp = abs >> 23;
    uint32_t shift = 126u - exp;
    if (shift >= 25u)
      return sign;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
      ++q; // q == 0x400 is the smallest normal: still the right pattern.
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits with
  // round half to even; a carry into the exponent is correct.
  uint32_t h = (abs - 0x38000000u) >> 13;
  uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
    ++h;
  return static_cast<uint16_t>(sign | h);
}

/// The float value of an fp16 bit pattern (exact).
inline float f16BitsToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  if (exp == 0x1fu) // inf or NaN (NaN made quiet, payload kept).
    return detail::bitsAsFloat(sign | 0x7f800000u |
                               (mant ? 0x400000u | (mant << 13) : 0u));
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
  }
  return detail::bitsAsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// Rounds `value` to `type` (nearest, ties to even) and returns its bits.
inline uint16_t floatToBits(DType type, float value) {
  return type == DType::kBF16 ? floatToBF16Bits(value) : floatToF16Bits(value);
}

/// The float value of a `type` bit pattern (exact).
inline float bitsToFloat(DType type, uint16_t bits) {
  return type == DType::kBF16 ? bf16BitsToFloat(bits) : f16BitsToFloat(bits);
}

/// `value` rounded to `type` and back: what storing it as `type` keeps.
inline float roundToDType(DType type, float value) {
  return bitsToFloat(type, floatToBits(type, value));
}

} // namespace fp

#endif // FLASHPREFILL_DTYPE_H
