#===- fuzz/FuzzTargets.cmake - Fuzz targets and corpus replay tests --------===#
#
# SPDX-License-Identifier: Apache-2.0
#
# One executable per target, fp-fuzz-<name>, with LLVMFuzzerTestOneInput in
# <name's source>:
#   dialect      fp dialect text -> verifiers -> fp-compile-pipeline -> CUDA
#   capi         C API / fp::Plan argument validation, CPU backend
#   cache-entry  kernel-cache entry files (and the ptxas log parser)
#   manifest     the CUDA plan's kernel-manifest parser
#   tuning-db    fp-tune's tuning-database loader (JSON)
# FP_FUZZ=ON (clang): libFuzzer binaries (scripts/fuzz.sh). Otherwise:
# replay drivers (ReplayMain.cpp). Either way CTest replays the seed corpus
# and the crash regressions in corpus/<name>/ (fp-fuzz-<name>-corpus).
#
#===------------------------------------------------------------------------===#
# Included by fuzz/CMakeLists.txt (add_subdirectory(fuzz)) or, when the
# top-level CMakeLists.txt does not add fuzz/, by cmake/FPSanitizers.cmake at
# its end (deferred calls may not add subdirectories).
set_property(GLOBAL PROPERTY FP_FUZZ_DIR_ADDED TRUE)
set(FP_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

set(FP_FUZZ_CORPUS_DIR ${FP_FUZZ_DIR}/corpus)

# add_fp_fuzzer(<name> SOURCES <src>... LIBS <libs>...)
function(add_fp_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  set(target fp-fuzz-${name})
  add_executable(${target} ${ARG_SOURCES})
  target_include_directories(${target} PRIVATE ${FP_FUZZ_DIR})
  target_link_libraries(${target} PRIVATE ${ARG_LIBS})
  if(FP_FUZZ)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    set(replayFlags -runs=0)
  else()
    target_sources(${target} PRIVATE ${FP_FUZZ_DIR}/ReplayMain.cpp)
    set(replayFlags "")
  endif()
  if(FP_BUILD_TESTS)
    add_test(NAME ${target}-corpus
      COMMAND ${target} ${replayFlags} ${FP_FUZZ_CORPUS_DIR}/${name})
    set_tests_properties(${target}-corpus PROPERTIES
      TIMEOUT 300 LABELS fuzz)
  endif()
endfunction()

add_fp_fuzzer(cache-entry SOURCES ${FP_FUZZ_DIR}/fuzz_cache_entry.cpp LIBS FPRuntimeCore)

# The manifest parser (a private file of libflashprefill) is compiled into
# the target: no MLIR, no CUDA plan.
add_fp_fuzzer(manifest
  SOURCES ${FP_FUZZ_DIR}/fuzz_manifest.cpp
    ${PROJECT_SOURCE_DIR}/runtime/api/ManifestParser.cpp
  LIBS FPStatus)
target_include_directories(fp-fuzz-manifest PRIVATE
  ${PROJECT_SOURCE_DIR}/runtime/api)

if(FP_ENABLE_COMPILER)

  # The shared library in replay builds (a fast link); the static one under
  # libFuzzer so the coverage counters live in one module.
  # FPReference: fp_merge_states is compared with ref::mergeStates.
  if(FP_FUZZ)
    add_fp_fuzzer(capi SOURCES ${FP_FUZZ_DIR}/fuzz_capi.cpp
      LIBS flashprefill_static FPReference FPRuntimeHeaders)
  else()
    add_fp_fuzzer(capi SOURCES ${FP_FUZZ_DIR}/fuzz_capi.cpp
      LIBS flashprefill FPReference)
  endif()
  # The harness restates the merge formula one fp32 operation at a time, as
  # the reference does: no fused multiply-add.
  target_compile_options(fp-fuzz-capi PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-ffp-contract=off>)

  add_fp_fuzzer(tuning-db SOURCES ${FP_FUZZ_DIR}/fuzz_tuning_db.cpp LIBS FPCompiler)

  add_fp_fuzzer(dialect SOURCES ${FP_FUZZ_DIR}/fuzz_dialect.cpp
    LIBS FPCompiler FPDialect MLIRParser MLIRPass)
  target_compile_options(fp-fuzz-dialect PRIVATE ${FP_NO_RTTI_FLAG})
endif()
