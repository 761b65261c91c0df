//===- Internal.h - Helpers shared by the reference sources -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_REFERENCE_INTERNAL_H
#define FP_REFERENCE_INTERNAL_H

#include "flashprefill/reference.h"

namespace fp::ref::detail {

/// Checks one tensor view: non-negative batch/seq/heads, dim > 0, a known
/// dtype and non-null data when non-empty. `name` prefixes the message.
Status checkView(const char *name, const TensorView &view);

} // namespace fp::ref::detail

#endif // FP_REFERENCE_INTERNAL_H
