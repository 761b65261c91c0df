/*===- BadInputC.c - Bad-input rows that only C can express ---------------===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A C enum object may hold any int: fp_status_name() of an unknown code and
 * a spec whose dtype is outside fp_dtype_t are valid C calls (in C++ the
 * out-of-range enum values would themselves be undefined behaviour).
 *
 *===----------------------------------------------------------------------===*/
#include "flashprefill/flashprefill.h"

#include <string.h>

const char *fpBadInputStatusName(int code) {
  return fp_status_name((fp_status_t)code);
}

int fpBadInputDtype(int dtype, char *message, size_t size) {
  fp_plan_spec_t spec;
  fp_plan_t *plan = NULL;
  fp_status_t status;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  spec.dtype = (fp_dtype_t)dtype;
  status = fp_plan_create(&spec, &plan);
  strncpy(message, fp_last_error(), size - 1);
  message[size - 1] = '\0';
  fp_plan_destroy(plan);
  return (int)status;
}
