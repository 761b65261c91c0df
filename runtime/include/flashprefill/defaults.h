/*===- flashprefill/defaults.h - Shared operator defaults ---------*- C -*-===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The one definition of the operator's default parameters
 * (docs/semantics.md section 1). Read by the C API, the C++ runtime, the CPU
 * reference, the compiler and (by parsing this file) the Python package:
 * change a value here and every layer follows. Plain C89 macros so every
 * consumer can read them.
 *
 *===----------------------------------------------------------------------===*/
#ifndef FLASHPREFILL_DEFAULTS_H
#define FLASHPREFILL_DEFAULTS_H

/* Tokens per block: the unit of pooling, scoring and selection. */
#define FP_DEFAULT_BLOCK_SIZE 128
/* Keep block j when score[I,j] >= alpha * max_j' score[I,j']. */
#define FP_DEFAULT_ALPHA 0.1f
/* Key blocks [0, sink) are always kept (attention sinks). */
#define FP_DEFAULT_SINK 2
/* Key blocks with I - j < window are always kept (local band, diagonal included). */
#define FP_DEFAULT_WINDOW 4
/* Query blocks I >= nb - last_n are dense. */
#define FP_DEFAULT_LAST_N 2
/* With k > 0, also keep every block scoring >= the k-th largest score. */
#define FP_DEFAULT_MIN_BUDGET 0
/* Added to the energy sum before normalising block scores. */
#define FP_SCORE_EPSILON 1e-9f

#endif /* FLASHPREFILL_DEFAULTS_H */
